-- +goose Up
CREATE INDEX t4_name ON t4 (name);

-- +goose Down
DROP INDEX t4_name;
