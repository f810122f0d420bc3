-- patcher:no-transaction
-- patcher:ignore MULTI_STATEMENT_NO_TRANSACTION both are IF EXISTS: a rerun after a failure part-way finishes the job
DROP INDEX CONCURRENTLY IF EXISTS questions_score_idx;
DROP INDEX CONCURRENTLY IF EXISTS questions_created_at_idx;
