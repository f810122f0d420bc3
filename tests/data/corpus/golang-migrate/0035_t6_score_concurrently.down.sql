-- patcher:no-transaction
DROP INDEX CONCURRENTLY t6_score;
