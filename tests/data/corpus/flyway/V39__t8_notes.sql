ALTER TABLE t8 ADD COLUMN notes jsonb NOT NULL DEFAULT '{}';
COMMENT ON COLUMN t8.notes IS 'free-form; semicolons; are fine here';
