-- patcher:ignore FOREIGN_KEY_LOCKS_REFERENCED a new empty table and its indexes, one short transaction: the referenced tables' writers wait only for that
CREATE TABLE answers (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    question_id  bigint      NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
    author_id    bigint      REFERENCES users (id) ON DELETE SET NULL,
    body         text        NOT NULL,
    is_accepted  boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT answers_body_length CHECK (length(body) BETWEEN 30 AND 30000)
);

CREATE INDEX answers_question_id_idx ON answers (question_id);
CREATE INDEX answers_author_id_idx ON answers (author_id);
-- At most one accepted answer per question.
CREATE UNIQUE INDEX answers_one_accepted_per_question ON answers (question_id) WHERE is_accepted;
