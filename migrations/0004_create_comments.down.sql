-- patcher:ignore DROP_TABLE,ACCESS_EXCLUSIVE_LOCK down script: dropping what 0004 created is what a rollback is for
DROP TABLE comments;
