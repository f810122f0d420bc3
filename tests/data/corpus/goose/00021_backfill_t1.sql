-- +goose Up
INSERT INTO t1 (name, score)
SELECT 'row ' || g, g % 7 FROM generate_series(1, 50) AS g;
UPDATE t1 SET score = score * 10 WHERE score > 3;

-- +goose Down
DELETE FROM t1;
