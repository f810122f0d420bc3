-- migrate:up
ALTER TABLE t5 ADD CONSTRAINT t5_score_positive CHECK (score >= 0);

-- migrate:down
ALTER TABLE t5 DROP CONSTRAINT t5_score_positive;
