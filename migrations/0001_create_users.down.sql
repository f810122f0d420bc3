-- patcher:ignore DROP_TABLE,ACCESS_EXCLUSIVE_LOCK down script: dropping what 0001 created is what a rollback is for
DROP TABLE users;
