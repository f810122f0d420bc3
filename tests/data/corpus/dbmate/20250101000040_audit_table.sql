-- migrate:up
CREATE TABLE audit (
    at timestamptz DEFAULT now(),
    what text
);
CREATE INDEX audit_at ON audit (at);

-- migrate:down
DROP TABLE audit;
