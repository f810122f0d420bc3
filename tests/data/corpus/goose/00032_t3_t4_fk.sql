-- +goose Up
ALTER TABLE t4 ADD COLUMN t3_id bigint REFERENCES t3 (id);

-- +goose Down
ALTER TABLE t4 DROP COLUMN t3_id;
