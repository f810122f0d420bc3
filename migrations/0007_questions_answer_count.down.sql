-- patcher:ignore DROP_OBJECT,DROP_COLUMN,ACCESS_EXCLUSIVE_LOCK down script: dropping what 0007 created is what a rollback is for (trigger first, so no write fires it mid-way)
DROP TRIGGER answers_maintain_question_answer_count ON answers;
DROP FUNCTION questions_maintain_answer_count();
ALTER TABLE questions DROP COLUMN answer_count;
