-- patcher:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS questions_score_idx;
DROP INDEX CONCURRENTLY IF EXISTS questions_created_at_idx;
