-- migrate:up
CREATE INDEX t6_name ON t6 (name);

-- migrate:down
DROP INDEX t6_name;
