-- One vote per user and post; value is +1 (up) or -1 (down).
-- patcher:ignore FOREIGN_KEY_LOCKS_REFERENCED a new empty table and its indexes, one short transaction: the referenced tables' writers wait only for that
CREATE TABLE votes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    question_id  bigint      REFERENCES questions (id) ON DELETE CASCADE,
    answer_id    bigint      REFERENCES answers (id) ON DELETE CASCADE,
    value        smallint    NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT votes_value_check CHECK (value IN (-1, 1)),
    CONSTRAINT votes_one_post CHECK (num_nonnulls(question_id, answer_id) = 1),
    -- These two unique constraints also serve as the index on user_id.
    CONSTRAINT votes_user_question_key UNIQUE (user_id, question_id),
    CONSTRAINT votes_user_answer_key UNIQUE (user_id, answer_id)
);

CREATE INDEX votes_question_id_idx ON votes (question_id) WHERE question_id IS NOT NULL;
CREATE INDEX votes_answer_id_idx ON votes (answer_id) WHERE answer_id IS NOT NULL;
