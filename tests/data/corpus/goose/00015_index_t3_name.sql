-- +goose Up
CREATE INDEX t3_name ON t3 (name);

-- +goose Down
DROP INDEX t3_name;
