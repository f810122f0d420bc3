-- migrate:up
CREATE TRIGGER t2_touch BEFORE INSERT OR UPDATE ON t2
FOR EACH ROW EXECUTE FUNCTION touch_score();

-- migrate:down
DROP TRIGGER t2_touch ON t2;
