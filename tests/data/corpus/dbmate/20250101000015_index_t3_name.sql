-- migrate:up
CREATE INDEX t3_name ON t3 (name);

-- migrate:down
DROP INDEX t3_name;
