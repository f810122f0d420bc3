-- +goose Up
CREATE INDEX t1_name ON t1 (name);

-- +goose Down
DROP INDEX t1_name;
