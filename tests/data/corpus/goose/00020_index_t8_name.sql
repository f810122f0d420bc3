-- +goose Up
CREATE INDEX t8_name ON t8 (name);

-- +goose Down
DROP INDEX t8_name;
