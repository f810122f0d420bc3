-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY t7_created_name ON t7 (created_at, name);

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY t7_created_name;
