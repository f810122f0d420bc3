-- +goose Up
ALTER TABLE t9 ADD CONSTRAINT t9_name_key UNIQUE (name);

-- +goose Down
ALTER TABLE t9 DROP CONSTRAINT t9_name_key;
