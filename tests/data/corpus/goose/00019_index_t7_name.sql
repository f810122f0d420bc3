-- +goose Up
CREATE INDEX t7_name ON t7 (name);

-- +goose Down
DROP INDEX t7_name;
