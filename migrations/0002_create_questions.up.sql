-- patcher:ignore FOREIGN_KEY_LOCKS_REFERENCED a new empty table and its indexes, one short transaction: the referenced tables' writers wait only for that
CREATE TABLE questions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    author_id   bigint      REFERENCES users (id) ON DELETE SET NULL,
    title       text        NOT NULL,
    body        text        NOT NULL,
    view_count  integer     NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz,
    CONSTRAINT questions_title_length CHECK (length(title) BETWEEN 15 AND 150),
    CONSTRAINT questions_body_length CHECK (length(body) BETWEEN 30 AND 30000),
    CONSTRAINT questions_view_count_positive CHECK (view_count >= 0),
    CONSTRAINT questions_closed_after_created CHECK (closed_at IS NULL OR closed_at >= created_at)
);

CREATE INDEX questions_author_id_idx ON questions (author_id);
