-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY t7_created_name ON t7 (created_at, name);

-- +goose Down
DROP INDEX CONCURRENTLY t7_created_name;
