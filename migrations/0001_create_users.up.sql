-- StackFlow users. Posts outlive their authors (author columns are ON DELETE SET NULL).
CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      text        NOT NULL,
    email         text        NOT NULL,
    display_name  text        NOT NULL,
    reputation    integer     NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_username_key UNIQUE (username),
    CONSTRAINT users_username_format CHECK (username ~ '^[A-Za-z0-9_.-]{3,40}$'),
    CONSTRAINT users_email_format CHECK (email LIKE '_%@_%' AND length(email) <= 254),
    CONSTRAINT users_display_name_length CHECK (length(display_name) BETWEEN 1 AND 80),
    CONSTRAINT users_reputation_positive CHECK (reputation >= 1)
);

-- E-mail addresses are unique regardless of case.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
