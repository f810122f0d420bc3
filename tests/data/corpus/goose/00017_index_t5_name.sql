-- +goose Up
CREATE INDEX t5_name ON t5 (name);

-- +goose Down
DROP INDEX t5_name;
