-- migrate:up
ALTER TABLE t12 RENAME TO t12_renamed;

-- migrate:down
ALTER TABLE t12_renamed RENAME TO t12;
