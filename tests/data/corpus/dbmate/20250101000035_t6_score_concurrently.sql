-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY t6_score ON t6 (score);

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY t6_score;
