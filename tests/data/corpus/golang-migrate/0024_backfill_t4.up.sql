INSERT INTO t4 (name, score)
SELECT 'row ' || g, g % 7 FROM generate_series(1, 200) AS g;
UPDATE t4 SET score = score * 10 WHERE score > 3;
