DROP INDEX t7_name;
