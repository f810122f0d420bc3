DROP TRIGGER votes_maintain_question_score ON votes;
DROP FUNCTION questions_maintain_score();
ALTER TABLE questions DROP COLUMN score;
