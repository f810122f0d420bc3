-- migrate:up
CREATE INDEX t7_name ON t7 (name);

-- migrate:down
DROP INDEX t7_name;
