-- migrate:up
CREATE INDEX t4_name ON t4 (name);

-- migrate:down
DROP INDEX t4_name;
