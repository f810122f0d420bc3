-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY t7_created ON t7 (created_at);

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY t7_created;
