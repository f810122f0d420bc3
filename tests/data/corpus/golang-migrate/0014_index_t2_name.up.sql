CREATE INDEX t2_name ON t2 (name);
