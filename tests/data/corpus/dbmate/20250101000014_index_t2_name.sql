-- migrate:up
CREATE INDEX t2_name ON t2 (name);

-- migrate:down
DROP INDEX t2_name;
