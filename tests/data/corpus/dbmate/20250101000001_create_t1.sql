-- migrate:up
CREATE TABLE t1 (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    score integer DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- migrate:down
DROP TABLE t1;
