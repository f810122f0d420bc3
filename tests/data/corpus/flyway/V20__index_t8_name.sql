CREATE INDEX t8_name ON t8 (name);
