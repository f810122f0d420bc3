-- A comment belongs to exactly one post: a question or an answer.
-- patcher:ignore FOREIGN_KEY_LOCKS_REFERENCED a new empty table and its indexes, one short transaction: the referenced tables' writers wait only for that
CREATE TABLE comments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    question_id  bigint      REFERENCES questions (id) ON DELETE CASCADE,
    answer_id    bigint      REFERENCES answers (id) ON DELETE CASCADE,
    author_id    bigint      REFERENCES users (id) ON DELETE SET NULL,
    body         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT comments_one_post CHECK (num_nonnulls(question_id, answer_id) = 1),
    CONSTRAINT comments_body_length CHECK (length(body) BETWEEN 15 AND 600)
);

CREATE INDEX comments_question_id_idx ON comments (question_id) WHERE question_id IS NOT NULL;
CREATE INDEX comments_answer_id_idx ON comments (answer_id) WHERE answer_id IS NOT NULL;
CREATE INDEX comments_author_id_idx ON comments (author_id);
