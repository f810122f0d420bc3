UPDATE t4 SET t3_id = (SELECT min(id) FROM t3) WHERE id % 2 = 0;
