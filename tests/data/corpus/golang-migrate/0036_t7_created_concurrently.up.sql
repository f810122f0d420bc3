-- patcher:no-transaction
CREATE INDEX CONCURRENTLY t7_created ON t7 (created_at);
