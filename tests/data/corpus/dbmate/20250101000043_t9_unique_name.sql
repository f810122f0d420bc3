-- migrate:up
ALTER TABLE t9 ADD CONSTRAINT t9_name_key UNIQUE (name);

-- migrate:down
ALTER TABLE t9 DROP CONSTRAINT t9_name_key;
