ALTER TABLE t5 ADD CONSTRAINT t5_score_positive CHECK (score >= 0);
