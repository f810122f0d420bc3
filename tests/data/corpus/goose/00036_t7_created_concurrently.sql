-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY t7_created ON t7 (created_at);

-- +goose Down
DROP INDEX CONCURRENTLY t7_created;
