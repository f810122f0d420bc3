CREATE INDEX t6_name ON t6 (name);
