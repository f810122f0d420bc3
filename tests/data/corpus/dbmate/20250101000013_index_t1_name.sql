-- migrate:up
CREATE INDEX t1_name ON t1 (name);

-- migrate:down
DROP INDEX t1_name;
