-- +goose Up
CREATE TYPE status AS ENUM ('new', 'active', 'gone');

-- +goose Down
DROP TYPE status;
