CREATE INDEX t3_name ON t3 (name);
