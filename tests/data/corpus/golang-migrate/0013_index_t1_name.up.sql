CREATE INDEX t1_name ON t1 (name);
