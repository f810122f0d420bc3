CREATE FUNCTION touch_score() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.score IS NULL THEN
        NEW.score := 0;  -- a semicolon inside the body
    END IF;
    RETURN NEW;
END;
$$;
