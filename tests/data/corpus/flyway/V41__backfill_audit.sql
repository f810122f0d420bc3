INSERT INTO audit (what)
SELECT 'seed ' || score_of(id) FROM t1 ORDER BY id LIMIT 20;
