CREATE INDEX t7_name ON t7 (name);
