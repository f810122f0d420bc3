-- patcher:no-transaction
CREATE INDEX CONCURRENTLY t6_score ON t6 (score);
