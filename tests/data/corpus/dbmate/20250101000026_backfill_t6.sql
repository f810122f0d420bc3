-- migrate:up
INSERT INTO t6 (name, score)
SELECT 'row ' || g, g % 7 FROM generate_series(1, 300) AS g;
UPDATE t6 SET score = score * 10 WHERE score > 3;

-- migrate:down
DELETE FROM t6;
