"""A 250-migration history of a Q&A product (StackFlow), written for ``make lint-compare``.

Deterministic (seeded): the first migrations create the core tables with their keys and
indexes in one file each, as real projects do; then years of changes follow, drawn from the
kinds real histories hold: new tables created with their indexes, foreign keys and follow-up
ALTERs in the same file (where a linter that does not track new objects is noisy), columns and
indexes added to big existing tables, constraints added NOT VALID and validated later, renames,
type changes, enum values, views and materialized views replaced or dropped, backfills,
concurrent index builds in no-transaction scripts, and the occasional mistake.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

CORE = {
    "users": "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL, "
    "display_name varchar(80), reputation int NOT NULL DEFAULT 1, created_at timestamp "
    "NOT NULL DEFAULT now()",
    "questions": "id bigserial PRIMARY KEY, author_id bigint NOT NULL REFERENCES users (id), "
    "title varchar(300) NOT NULL, body text NOT NULL, score int NOT NULL DEFAULT 0, "
    "created_at timestamptz NOT NULL DEFAULT now()",
    "answers": "id bigserial PRIMARY KEY, question_id bigint NOT NULL REFERENCES questions (id), "
    "author_id bigint NOT NULL REFERENCES users (id), body text NOT NULL, score int NOT NULL "
    "DEFAULT 0, accepted boolean NOT NULL DEFAULT false",
    "votes": "id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id), "
    "post_id bigint NOT NULL, value smallint NOT NULL CHECK (value IN (-1, 1))",
    "tags": "id serial PRIMARY KEY, name varchar(35) NOT NULL UNIQUE",
    "question_tags": "question_id bigint NOT NULL REFERENCES questions (id), tag_id int NOT NULL "
    "REFERENCES tags (id), PRIMARY KEY (question_id, tag_id)",
    "comments": "id bigserial PRIMARY KEY, post_id bigint NOT NULL, author_id bigint NOT NULL "
    "REFERENCES users (id), body varchar(600) NOT NULL, created_at timestamptz DEFAULT now()",
    "badges": "id serial PRIMARY KEY, name text NOT NULL, description text",
}
Migration = tuple[str, str, str | None]  # (description, up, down)


class History:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.tables = list(CORE)
        self.columns: dict[str, list[str]] = {t: [] for t in CORE}
        self.views: list[str] = []
        self.enum_values = ["open", "closed"]
        self.serial = 0

    def name(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}_{self.serial}"

    def table(self) -> str:
        return self.rng.choice(self.tables)

    # --- the kinds of change -------------------------------------------------------------

    def new_table(self) -> Migration:
        t = self.name(self.rng.choice(["audit", "flags", "drafts", "reports", "follows", "edits"]))
        ref = self.rng.choice(["users", "questions", "answers"])
        up = (
            f"CREATE TABLE {t} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            f"{ref[:-1]}_id bigint NOT NULL REFERENCES {ref} (id), note text, "
            "created_at timestamptz NOT NULL DEFAULT now());\n"
            f"CREATE INDEX {t}_{ref}_idx ON {t} ({ref[:-1]}_id);\n"
            f"ALTER TABLE {t} ADD COLUMN state text NOT NULL DEFAULT 'new';\n"
            f"ALTER TABLE {t} ADD CONSTRAINT {t}_state_check CHECK (state <> '');\n"
            f"CREATE UNIQUE INDEX {t}_uniq ON {t} ({ref[:-1]}_id, created_at);\n"
        )
        self.tables.append(t)
        self.columns[t] = []
        return f"create_{t}", up, f"DROP TABLE {t};\n"

    def add_column(self) -> Migration:
        t, c = self.table(), self.name("col")
        kinds = ["text", "bigint DEFAULT 0 NOT NULL", "boolean", "jsonb DEFAULT '{}'"]
        kind = self.rng.choice(kinds)
        self.columns[t].append(c)
        return (
            f"add_{c}_to_{t}",
            f"ALTER TABLE {t} ADD COLUMN {c} {kind};\n",
            (f"ALTER TABLE {t} DROP COLUMN {c};\n"),
        )

    def add_index(self) -> Migration:
        t = self.table()
        col = self.rng.choice(self.columns[t] or ["id"])
        i = self.name(f"{t}_idx")
        if self.rng.random() < 0.5:
            up = f"-- patcher:no-transaction\nCREATE INDEX CONCURRENTLY {i} ON {t} ({col});\n"
            down = f"-- patcher:no-transaction\nDROP INDEX CONCURRENTLY {i};\n"
        else:
            up, down = f"CREATE INDEX {i} ON {t} ({col});\n", f"DROP INDEX {i};\n"
        return f"index_{i}", up, down

    def add_foreign_key(self) -> Migration:
        t = self.table()
        c = self.name("owner_id")
        fk = f"{t}_{c}_fk"
        valid = self.rng.random() < 0.5
        up = (
            f"ALTER TABLE {t} ADD COLUMN {c} bigint;\n"
            f"ALTER TABLE {t} ADD CONSTRAINT {fk} FOREIGN KEY ({c}) REFERENCES users (id)"
            + ("" if valid else " NOT VALID")
            + ";\n"
            + ("" if valid else f"ALTER TABLE {t} VALIDATE CONSTRAINT {fk};\n")
        )
        self.columns[t].append(c)
        return f"fk_{fk}", up, f"ALTER TABLE {t} DROP COLUMN {c};\n"

    def not_null(self) -> Migration:
        t = self.table()
        c = self.rng.choice(self.columns[t] or ["id"])
        return (
            f"not_null_{t}_{c}",
            f"ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL;\n",
            (f"ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL;\n"),
        )

    def rename(self) -> Migration:
        t = self.table()
        if self.columns[t]:
            old = self.columns[t].pop()
            new = self.name("renamed")
            self.columns[t].append(new)
            return (
                f"rename_{old}",
                f"ALTER TABLE {t} RENAME COLUMN {old} TO {new};\n",
                (f"ALTER TABLE {t} RENAME COLUMN {new} TO {old};\n"),
            )
        return f"rename_idx_{t}", f"ALTER INDEX {t}_pkey RENAME TO {t}_pk;\n", None

    def change_type(self) -> Migration:
        t = self.table()
        c = self.rng.choice(self.columns[t] or ["id"])
        target = self.rng.choice(["bigint", "text", "varchar(200)", "timestamptz USING now()"])
        return f"retype_{t}_{c}", f"ALTER TABLE {t} ALTER COLUMN {c} TYPE {target};\n", None

    def view(self) -> Migration:
        v = self.name("v_report")
        t = self.table()
        up = f"CREATE OR REPLACE VIEW {v} AS SELECT count(*) AS n FROM {t};\n"
        if self.views and self.rng.random() < 0.5:
            up = f"DROP VIEW {self.views.pop(0)};\n" + up
        self.views.append(v)
        return f"view_{v}", up, f"DROP VIEW {v};\n"

    def matview(self) -> Migration:
        m = self.name("mv_stats")
        up = (
            f"CREATE MATERIALIZED VIEW {m} AS SELECT author_id, count(*) FROM questions "
            "GROUP BY author_id;\n"
            f"CREATE UNIQUE INDEX {m}_author ON {m} (author_id);\n"
            f"REFRESH MATERIALIZED VIEW {m};\n"
        )
        return f"matview_{m}", up, f"DROP MATERIALIZED VIEW {m};\n"

    def enum_value(self) -> Migration:
        value = self.name("state")
        after = self.enum_values[-1]
        self.enum_values.append(value)
        where = f" AFTER '{after}'" if self.rng.random() < 0.5 else ""
        return f"enum_{value}", f"ALTER TYPE question_state ADD VALUE '{value}'{where};\n", None

    def backfill(self) -> Migration:
        t = self.table()
        c = self.rng.choice(self.columns[t] or ["id"])
        where = " WHERE id < 100000" if self.rng.random() < 0.7 else ""
        return f"backfill_{t}", f"UPDATE {t} SET {c} = {c}{where};\n", None

    def function_trigger(self) -> Migration:
        f, t = self.name("touch"), self.table()
        up = (
            f"CREATE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n  NEW.note := coalesce(NEW.note, '');\n  RETURN NEW;\nEND;\n$$;\n"
            f"CREATE TRIGGER {f}_trg BEFORE UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {f}();\n"
        )
        down = f"DROP TRIGGER {f}_trg ON {t};\nDROP FUNCTION {f}();\n"
        return f"trigger_{f}", up, down

    def drop_column(self) -> Migration:
        t = self.table()
        if not self.columns[t]:
            return self.add_column()
        c = self.columns[t].pop(0)
        return f"drop_{c}", f"ALTER TABLE {t} DROP COLUMN {c};\n", None

    def unique(self) -> Migration:
        t = self.table()
        c = self.rng.choice(self.columns[t] or ["id"])
        u = f"{t}_{c}_{self.name('key')}"
        return (
            f"unique_{u}",
            f"ALTER TABLE {t} ADD CONSTRAINT {u} UNIQUE ({c});\n",
            (f"ALTER TABLE {t} DROP CONSTRAINT {u};\n"),
        )

    def maintenance(self) -> Migration:
        t = self.table()
        sql = self.rng.choice(
            [f"REINDEX TABLE {t};\n", f"ALTER TABLE {t} SET SCHEMA public;\n", f"LOCK TABLE {t};\n"]
        )
        return f"maintenance_{self.name(t)}", sql, None


def migrations(count: int = 250, seed: int = 17) -> Iterator[Migration]:
    history = History(seed)
    for table, columns in CORE.items():
        indexes = "".join(
            f"CREATE INDEX {table}_{col}_idx ON {table} ({col});\n"
            for col in ("author_id", "question_id", "user_id", "post_id")
            if col in columns
        )
        yield f"create_{table}", f"CREATE TABLE {table} ({columns});\n{indexes}", None
    yield (
        "question_state",
        "CREATE TYPE question_state AS ENUM ('open', 'closed');\n"
        "ALTER TABLE questions ADD COLUMN state question_state NOT NULL DEFAULT 'open';\n",
        None,
    )
    kinds: list[tuple[Callable[[], Migration], int]] = [
        (history.new_table, 14), (history.add_column, 22), (history.add_index, 16),
        (history.add_foreign_key, 8), (history.not_null, 5), (history.rename, 5),
        (history.change_type, 6), (history.view, 6), (history.matview, 2),
        (history.enum_value, 3), (history.backfill, 6), (history.function_trigger, 3),
        (history.drop_column, 4), (history.unique, 4), (history.maintenance, 3),
    ]  # fmt: skip
    makers, weights = zip(*kinds, strict=True)
    for _ in range(count - len(CORE) - 1):
        yield history.rng.choices(makers, weights)[0]()


def write(directory: Path, count: int = 250) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for version, (description, up, down) in enumerate(migrations(count), start=1):
        stem = f"{version:04d}_{description}"
        paths.append(directory / f"{stem}.up.sql")
        paths[-1].write_text(up)
        if down is not None:
            paths.append(directory / f"{stem}.down.sql")
            paths[-1].write_text(down)
    return paths
