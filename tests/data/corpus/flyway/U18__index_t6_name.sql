DROP INDEX t6_name;
