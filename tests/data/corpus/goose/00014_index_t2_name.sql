-- +goose Up
CREATE INDEX t2_name ON t2 (name);

-- +goose Down
DROP INDEX t2_name;
