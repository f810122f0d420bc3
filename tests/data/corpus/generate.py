"""Write the layout corpora: the same 43 migrations in each layout's own files.

``python -m tests.data.corpus.generate`` rewrites tests/data/corpus/<layout>/; the corpus test
checks the committed files equal what this writes, so they cannot drift apart. The steps hold
tables, indexes, a PL/pgSQL function with ``$$`` bodies and its trigger, an enum, a view,
no-transaction index builds and data backfills.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
LAYOUTS = ("golang-migrate", "flyway", "dbmate", "goose")


@dataclass(frozen=True)
class Step:
    description: str
    up: str
    down: str
    no_transaction: bool = False


def steps() -> list[Step]:
    out: list[Step] = []
    for i in range(1, 13):
        out.append(Step(
            f"create_t{i}",
            f"CREATE TABLE t{i} (\n    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
            f"    name text NOT NULL,\n    score integer DEFAULT 0,\n"
            f"    created_at timestamptz NOT NULL DEFAULT now()\n);",
            f"DROP TABLE t{i};",
        ))  # fmt: skip
    for i in range(1, 9):
        out.append(Step(
            f"index_t{i}_name", f"CREATE INDEX t{i}_name ON t{i} (name);", f"DROP INDEX t{i}_name;"
        ))  # fmt: skip
    for i in range(1, 7):
        out.append(Step(
            f"backfill_t{i}",
            f"INSERT INTO t{i} (name, score)\nSELECT 'row ' || g, g % 7 FROM generate_series(1, "
            f"{50 * i}) AS g;\nUPDATE t{i} SET score = score * 10 WHERE score > 3;",
            f"DELETE FROM t{i};",
        ))  # fmt: skip
    out += [
        Step("status_enum", "CREATE TYPE status AS ENUM ('new', 'active', 'gone');",
             "DROP TYPE status;"),
        Step("t1_status", "ALTER TABLE t1 ADD COLUMN status status NOT NULL DEFAULT 'new';",
             "ALTER TABLE t1 DROP COLUMN status;"),
        Step("touch_function", TOUCH_FUNCTION, "DROP FUNCTION touch_score();"),
        Step("t2_touch_trigger",
             "CREATE TRIGGER t2_touch BEFORE INSERT OR UPDATE ON t2\n"
             "FOR EACH ROW EXECUTE FUNCTION touch_score();",
             "DROP TRIGGER t2_touch ON t2;"),
        Step("score_function", SCORE_FUNCTION, "DROP FUNCTION score_of(bigint);"),
        Step("t3_t4_fk", "ALTER TABLE t4 ADD COLUMN t3_id bigint REFERENCES t3 (id);",
             "ALTER TABLE t4 DROP COLUMN t3_id;"),
        Step("t5_check", "ALTER TABLE t5 ADD CONSTRAINT t5_score_positive CHECK (score >= 0);",
             "ALTER TABLE t5 DROP CONSTRAINT t5_score_positive;"),
        Step("scores_view", "CREATE VIEW scores AS\nSELECT 't1' AS src, name, score FROM t1\n"
             "UNION ALL SELECT 't2', name, score FROM t2;", "DROP VIEW scores;"),
        Step("t6_score_concurrently", "CREATE INDEX CONCURRENTLY t6_score ON t6 (score);",
             "DROP INDEX CONCURRENTLY t6_score;", no_transaction=True),
        # one concurrent build per file: dbmate sends a section as one message, and PostgreSQL
        # runs several statements of one message in a transaction (dbmate #126)
        Step("t7_created_concurrently", "CREATE INDEX CONCURRENTLY t7_created ON t7 (created_at);",
             "DROP INDEX CONCURRENTLY t7_created;", no_transaction=True),
        Step("t7_created_name_concurrently",
             "CREATE INDEX CONCURRENTLY t7_created_name ON t7 (created_at, name);",
             "DROP INDEX CONCURRENTLY t7_created_name;", no_transaction=True),
        Step("backfill_t4_fk", "UPDATE t4 SET t3_id = (SELECT min(id) FROM t3) WHERE id % 2 = 0;",
             "UPDATE t4 SET t3_id = NULL;"),
        Step("t8_notes", "ALTER TABLE t8 ADD COLUMN notes jsonb NOT NULL DEFAULT '{}';\n"
             "COMMENT ON COLUMN t8.notes IS 'free-form; semicolons; are fine here';",
             "ALTER TABLE t8 DROP COLUMN notes;"),
        Step("audit_table", "CREATE TABLE audit (\n    at timestamptz DEFAULT now(),\n"
             "    what text\n);\nCREATE INDEX audit_at ON audit (at);", "DROP TABLE audit;"),
        Step("backfill_audit", "INSERT INTO audit (what)\nSELECT 'seed ' || score_of(id) "
             "FROM t1 ORDER BY id LIMIT 20;", "TRUNCATE audit;"),
        Step("rename_t12", "ALTER TABLE t12 RENAME TO t12_renamed;",
             "ALTER TABLE t12_renamed RENAME TO t12;"),
        Step("t9_unique_name", "ALTER TABLE t9 ADD CONSTRAINT t9_name_key UNIQUE (name);",
             "ALTER TABLE t9 DROP CONSTRAINT t9_name_key;"),
    ]  # fmt: skip
    return out


TOUCH_FUNCTION = """CREATE FUNCTION touch_score() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.score IS NULL THEN
        NEW.score := 0;  -- a semicolon inside the body
    END IF;
    RETURN NEW;
END;
$$;"""
SCORE_FUNCTION = """CREATE FUNCTION score_of(t1_id bigint) RETURNS integer
LANGUAGE plpgsql STABLE AS $body$
DECLARE
    result integer;
BEGIN
    SELECT score INTO result FROM t1 WHERE id = t1_id;
    RETURN coalesce(result, -1);
END;
$body$;"""


def files(layout: str) -> dict[str, str]:
    """Every file of the corpus in ``layout``, by name."""
    out: dict[str, str] = {}
    for n, step in enumerate(steps(), 1):
        up, down = step.up + "\n", step.down + "\n"
        if layout == "golang-migrate":
            mark = "-- patcher:no-transaction\n" if step.no_transaction else ""
            out[f"{n:04d}_{step.description}.up.sql"] = mark + up
            out[f"{n:04d}_{step.description}.down.sql"] = mark + down
        elif layout == "flyway":
            for prefix, text in (("V", up), ("U", down)):
                out[f"{prefix}{n}__{step.description}.sql"] = text
                if step.no_transaction:
                    out[f"{prefix}{n}__{step.description}.sql.conf"] = (
                        "executeInTransaction=false\n"
                    )
        elif layout == "dbmate":
            option = " transaction:false" if step.no_transaction else ""
            out[f"{20250101000000 + n}_{step.description}.sql"] = (
                f"-- migrate:up{option}\n{up}\n-- migrate:down{option}\n{down}"
            )
        else:
            head = "-- +goose NO TRANSACTION\n" if step.no_transaction else ""
            body = f"-- +goose StatementBegin\n{up}-- +goose StatementEnd\n" if "$" in up else up
            out[f"{n:05d}_{step.description}.sql"] = (
                f"{head}-- +goose Up\n{body}\n-- +goose Down\n{down}"
            )
    return out


def main() -> int:
    for layout in LAYOUTS:
        folder = HERE / layout
        folder.mkdir(exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for name, text in files(layout).items():
            (folder / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
