DROP INDEX t4_name;
