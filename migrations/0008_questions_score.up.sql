-- questions.score = sum of the question's votes: backfilled here from votes and kept
-- up to date from now on by a trigger on votes. One transaction: all or nothing.
-- patcher:ignore ACCESS_EXCLUSIVE_LOCK intended: questions stays locked through the backfill below, so no count drifts
ALTER TABLE questions ADD COLUMN score integer NOT NULL DEFAULT 0;

CREATE FUNCTION questions_maintain_score() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.question_id IS NOT NULL THEN
        UPDATE questions SET score = score - OLD.value WHERE id = OLD.question_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.question_id IS NOT NULL THEN
        UPDATE questions SET score = score + NEW.value WHERE id = NEW.question_id;
    END IF;
    RETURN NULL;
END;
$$;

-- Before the backfill, so that no vote written meanwhile is missed (see 0007).
-- patcher:ignore CREATE_TRIGGER_LOCKS_TABLE intended: writes to votes wait until the backfill below commits
CREATE TRIGGER votes_maintain_question_score
    AFTER INSERT OR DELETE OR UPDATE OF value, question_id ON votes
    FOR EACH ROW
    EXECUTE FUNCTION questions_maintain_score();

-- Backfill: only questions that have votes, and only rows whose value changes.
UPDATE questions AS q
   SET score = v.total
  FROM (SELECT question_id, sum(value)::integer AS total
          FROM votes
         WHERE question_id IS NOT NULL
         GROUP BY question_id) AS v
 WHERE q.id = v.question_id
   AND q.score <> v.total;
