DROP TRIGGER answers_maintain_question_answer_count ON answers;
DROP FUNCTION questions_maintain_answer_count();
ALTER TABLE questions DROP COLUMN answer_count;
