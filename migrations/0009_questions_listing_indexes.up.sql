-- patcher:no-transaction
-- patcher:ignore MULTI_STATEMENT_NO_TRANSACTION both are IF NOT EXISTS: a rerun after a failure part-way builds the missing one
-- Indexes for the "newest" and "top" question listings. Built CONCURRENTLY so that
-- writes to questions are not blocked; IF NOT EXISTS so a re-run after an interrupted
-- build is harmless (an INVALID index left by a failed build must be dropped by hand).
CREATE INDEX CONCURRENTLY IF NOT EXISTS questions_created_at_idx
    ON questions (created_at DESC, id DESC);

CREATE INDEX CONCURRENTLY IF NOT EXISTS questions_score_idx
    ON questions (score DESC, id DESC);
