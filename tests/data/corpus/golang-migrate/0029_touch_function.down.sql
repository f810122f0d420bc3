DROP FUNCTION touch_score();
