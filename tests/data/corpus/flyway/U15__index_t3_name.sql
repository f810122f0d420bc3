DROP INDEX t3_name;
