DROP INDEX t8_name;
