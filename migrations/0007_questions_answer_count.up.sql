-- questions.answer_count, kept up to date by a trigger on answers.
-- A constant default makes ADD COLUMN a catalog-only change (no table rewrite).
-- patcher:ignore ACCESS_EXCLUSIVE_LOCK intended: questions stays locked through the backfill below, so no count drifts
ALTER TABLE questions ADD COLUMN answer_count integer NOT NULL DEFAULT 0;

CREATE FUNCTION questions_maintain_answer_count() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.question_id = NEW.question_id THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE questions SET answer_count = answer_count - 1 WHERE id = OLD.question_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE questions SET answer_count = answer_count + 1 WHERE id = NEW.question_id;
    END IF;
    RETURN NULL;  -- AFTER trigger: the return value is ignored
END;
$$;

-- Created before the backfill: CREATE TRIGGER blocks writes to answers until this
-- migration commits, so no answer can slip between the count and the trigger.
-- patcher:ignore CREATE_TRIGGER_LOCKS_TABLE intended: writes to answers wait until the backfill below commits
CREATE TRIGGER answers_maintain_question_answer_count
    AFTER INSERT OR DELETE OR UPDATE OF question_id ON answers
    FOR EACH ROW
    EXECUTE FUNCTION questions_maintain_answer_count();

UPDATE questions AS q
   SET answer_count = a.n
  FROM (SELECT question_id, count(*)::integer AS n FROM answers GROUP BY question_id) AS a
 WHERE q.id = a.question_id
   AND q.answer_count <> a.n;
