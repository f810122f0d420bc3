-- migrate:up
ALTER TABLE t4 ADD COLUMN t3_id bigint REFERENCES t3 (id);

-- migrate:down
ALTER TABLE t4 DROP COLUMN t3_id;
