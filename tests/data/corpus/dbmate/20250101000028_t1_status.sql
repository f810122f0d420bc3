-- migrate:up
ALTER TABLE t1 ADD COLUMN status status NOT NULL DEFAULT 'new';

-- migrate:down
ALTER TABLE t1 DROP COLUMN status;
