-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION score_of(t1_id bigint) RETURNS integer
LANGUAGE plpgsql STABLE AS $body$
DECLARE
    result integer;
BEGIN
    SELECT score INTO result FROM t1 WHERE id = t1_id;
    RETURN coalesce(result, -1);
END;
$body$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION score_of(bigint);
