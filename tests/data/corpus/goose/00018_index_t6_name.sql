-- +goose Up
CREATE INDEX t6_name ON t6 (name);

-- +goose Down
DROP INDEX t6_name;
