CREATE INDEX t4_name ON t4 (name);
