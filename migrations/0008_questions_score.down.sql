-- patcher:ignore DROP_OBJECT,DROP_COLUMN,ACCESS_EXCLUSIVE_LOCK down script: dropping what 0008 created is what a rollback is for (trigger first, so no write fires it mid-way)
DROP TRIGGER votes_maintain_question_score ON votes;
DROP FUNCTION questions_maintain_score();
ALTER TABLE questions DROP COLUMN score;
