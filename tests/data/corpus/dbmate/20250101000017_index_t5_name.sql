-- migrate:up
CREATE INDEX t5_name ON t5 (name);

-- migrate:down
DROP INDEX t5_name;
