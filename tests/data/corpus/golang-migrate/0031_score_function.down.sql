DROP FUNCTION score_of(bigint);
