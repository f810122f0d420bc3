CREATE VIEW scores AS
SELECT 't1' AS src, name, score FROM t1
UNION ALL SELECT 't2', name, score FROM t2;
