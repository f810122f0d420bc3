INSERT INTO t5 (name, score)
SELECT 'row ' || g, g % 7 FROM generate_series(1, 250) AS g;
UPDATE t5 SET score = score * 10 WHERE score > 3;
