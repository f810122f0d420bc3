DROP VIEW scores;
