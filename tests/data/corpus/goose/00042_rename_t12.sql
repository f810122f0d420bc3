-- +goose Up
ALTER TABLE t12 RENAME TO t12_renamed;

-- +goose Down
ALTER TABLE t12_renamed RENAME TO t12;
