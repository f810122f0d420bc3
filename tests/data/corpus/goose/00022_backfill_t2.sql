-- +goose Up
INSERT INTO t2 (name, score)
SELECT 'row ' || g, g % 7 FROM generate_series(1, 100) AS g;
UPDATE t2 SET score = score * 10 WHERE score > 3;

-- +goose Down
DELETE FROM t2;
