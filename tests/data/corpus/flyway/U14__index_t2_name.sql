DROP INDEX t2_name;
