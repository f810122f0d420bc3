CREATE INDEX t5_name ON t5 (name);
