DROP INDEX t5_name;
