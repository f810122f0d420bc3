-- +goose Up
ALTER TABLE t5 ADD CONSTRAINT t5_score_positive CHECK (score >= 0);

-- +goose Down
ALTER TABLE t5 DROP CONSTRAINT t5_score_positive;
