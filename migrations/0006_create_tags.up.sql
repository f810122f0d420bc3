CREATE TABLE tags (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text        NOT NULL,
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tags_name_key UNIQUE (name),
    CONSTRAINT tags_name_format CHECK (name ~ '^[a-z0-9][a-z0-9.#+-]{0,34}$')
);

-- patcher:ignore FOREIGN_KEY_LOCKS_REFERENCED a new empty table and its indexes, one short transaction: the referenced tables' writers wait only for that
CREATE TABLE question_tags (
    question_id  bigint      NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
    -- A tag in use cannot be deleted; merge or retag first.
    tag_id       bigint      NOT NULL REFERENCES tags (id) ON DELETE RESTRICT,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (question_id, tag_id)
);

-- The primary key covers question_id; tag_id needs its own index.
CREATE INDEX question_tags_tag_id_idx ON question_tags (tag_id);
