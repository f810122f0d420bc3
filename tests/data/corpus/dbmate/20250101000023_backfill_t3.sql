-- migrate:up
INSERT INTO t3 (name, score)
SELECT 'row ' || g, g % 7 FROM generate_series(1, 150) AS g;
UPDATE t3 SET score = score * 10 WHERE score > 3;

-- migrate:down
DELETE FROM t3;
