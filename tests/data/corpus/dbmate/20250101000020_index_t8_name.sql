-- migrate:up
CREATE INDEX t8_name ON t8 (name);

-- migrate:down
DROP INDEX t8_name;
