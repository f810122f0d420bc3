-- +goose Up
ALTER TABLE t1 ADD COLUMN status status NOT NULL DEFAULT 'new';

-- +goose Down
ALTER TABLE t1 DROP COLUMN status;
