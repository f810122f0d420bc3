-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY t6_score ON t6 (score);

-- +goose Down
DROP INDEX CONCURRENTLY t6_score;
