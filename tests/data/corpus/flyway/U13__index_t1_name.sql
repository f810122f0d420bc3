DROP INDEX t1_name;
