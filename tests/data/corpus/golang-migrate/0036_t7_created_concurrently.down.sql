-- patcher:no-transaction
DROP INDEX CONCURRENTLY t7_created;
