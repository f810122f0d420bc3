"""Schema drift on a real PostgreSQL (SPEC section 13): the repo's migrations plus one that
makes every other object kind are applied once; each out-of-band change below is made on a
copy of that database and must be reported by ``drift`` as exactly the differences named, and
nothing else; the untouched copy, and one where only data, statistics and sequence values
moved, report ``in_sync``."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.engine import REPO, make_runner, query
from tests.fixtures.postgres import PgServer

pytestmark = pytest.mark.db

ROLE = f"drift_reader_{uuid.uuid4().hex[:8]}"


def extension_versions(dsn: str) -> tuple[str, str]:
    """citext's second-newest and newest versions on this server (the update to make)."""
    rows = query(dsn, "SELECT version FROM pg_available_extension_versions WHERE name = 'citext'")
    versions = sorted((r[0] for r in rows), key=lambda v: tuple(int(p) for p in v.split(".")))
    return versions[-2], versions[-1]


def extra_migration(old_citext: str) -> str:
    """The object kinds the repo's migrations do not make."""
    return f"""
CREATE TYPE post_state AS ENUM ('draft', 'published');
CREATE DOMAIN score AS integer CONSTRAINT score_check CHECK (VALUE >= 0);
CREATE TABLE drafts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state post_state NOT NULL DEFAULT 'draft',
    points score,
    owner_name text,
    body text,
    note text
);
CREATE INDEX drafts_state_idx ON drafts (state);
CREATE SEQUENCE ticket_seq START 100 INCREMENT 5;
CREATE VIEW published_drafts AS SELECT id, body FROM drafts WHERE state = 'published';
CREATE MATERIALIZED VIEW draft_counts AS SELECT state, count(*) AS n FROM drafts GROUP BY state;
ALTER TABLE drafts ENABLE ROW LEVEL SECURITY;
CREATE POLICY drafts_owner ON drafts USING (owner_name = current_user);
CREATE EXTENSION citext VERSION '{old_citext}';
CREATE FUNCTION draft_points(d drafts) RETURNS integer
    LANGUAGE sql AS 'SELECT coalesce(d.points, 0)';
GRANT SELECT ON drafts TO {ROLE};
GRANT USAGE ON SEQUENCE ticket_seq TO {ROLE};
CREATE SCHEMA reporting;
CREATE TABLE reporting.daily (day date PRIMARY KEY, n integer NOT NULL);
"""


@pytest.fixture(scope="module")
def built(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database the corpus was applied to (a template: each test works on a copy)."""
    query(pg_server.dsn_for("postgres"), f"CREATE ROLE {ROLE}")
    name = pg_server.create_database()
    dsn = pg_server.dsn_for(name)
    source = tmp_path_factory.mktemp("drift-corpus")
    for path in (REPO / "migrations").glob("*.sql"):
        shutil.copy(path, source / path.name)
    old, _ = extension_versions(dsn)
    (source / "0100_drift_fixtures.up.sql").write_text(extra_migration(old))
    result = make_runner(dsn, source)("migrate")
    assert result["ok"], result["error"]
    yield name
    pg_server.drop_database(name)
    query(pg_server.dsn_for("postgres"), f"DROP ROLE {ROLE}")


@pytest.fixture
def copy(pg_server: PgServer, built: str) -> Iterator[str]:
    name = pg_server.create_database(template=built)
    yield pg_server.dsn_for(name)
    pg_server.drop_database(name)


def drift(dsn: str) -> dict[str, Any]:
    return make_runner(dsn, "/nonexistent")("drift")


def named(result: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(d["kind"], d["object"], d["change"]) for d in result["differences"]}


def test_untouched_and_data_only_changes_are_in_sync(copy: str) -> None:
    result = drift(copy)
    assert result["ok"] and result["status"] == "in_sync", result
    assert result["differences"] == [] and result["error"] is None
    query(copy, "INSERT INTO drafts (body, points) VALUES ('x', 3), ('y', 4)")
    query(copy, "SELECT nextval('ticket_seq'), nextval('ticket_seq')")
    query(copy, "ANALYZE")
    query(copy, "REFRESH MATERIALIZED VIEW draft_counts")
    query(copy, "REINDEX TABLE drafts")
    query(copy, "VACUUM drafts")
    again = drift(copy)
    assert again["status"] == "in_sync", again["differences"]


CASES: list[tuple[str, str, set[tuple[str, str, str]]]] = [
    ("dropped index", "DROP INDEX answers_author_id_idx",
     {("index", "public.answers_author_id_idx", "removed")}),
    ("invalid index",
     "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'drafts_state_idx'::regclass",
     {("index", "public.drafts_state_idx", "changed")}),
    ("added column", "ALTER TABLE users ADD COLUMN nickname text",
     {("column", "public.users.nickname", "added")}),
    ("dropped column", "ALTER TABLE drafts DROP COLUMN note",
     {("column", "public.drafts.note", "removed")}),
    ("changed default", "ALTER TABLE users ALTER COLUMN reputation SET DEFAULT 5",
     {("column", "public.users.reputation", "changed")}),
    ("changed type", "ALTER TABLE drafts ALTER COLUMN note TYPE varchar(200)",
     {("column", "public.drafts.note", "changed")}),
    ("set not null", "ALTER TABLE questions ALTER COLUMN closed_at SET NOT NULL",
     {("column", "public.questions.closed_at", "changed")}),
    ("changed function body",
     "CREATE OR REPLACE FUNCTION draft_points(d drafts) RETURNS integer LANGUAGE sql "
     "AS 'SELECT coalesce(d.points, 1)'",
     {("function", "public.draft_points(d drafts)", "changed")}),
    ("trigger disabled", "ALTER TABLE votes DISABLE TRIGGER votes_maintain_question_score",
     {("trigger", "public.votes.votes_maintain_question_score", "changed")}),
    ("trigger dropped", "DROP TRIGGER answers_maintain_question_answer_count ON answers",
     {("trigger", "public.answers.answers_maintain_question_answer_count", "removed")}),
    ("rls off", "ALTER TABLE drafts DISABLE ROW LEVEL SECURITY",
     {("table", "public.drafts", "changed")}),
    ("policy changed", "ALTER POLICY drafts_owner ON drafts USING (true)",
     {("policy", "public.drafts.drafts_owner", "changed")}),
    ("grant revoked", f"REVOKE SELECT ON drafts FROM {ROLE}",
     {("privilege", "public.drafts", "changed")}),
    ("grant added", f"GRANT INSERT ON users TO {ROLE}",
     {("privilege", "public.users", "changed")}),
    ("enum value added", "ALTER TYPE post_state ADD VALUE 'archived'",
     {("enum", "public.post_state", "changed")}),
    ("extension updated", "ALTER EXTENSION citext UPDATE TO '{new}'",
     {("extension", "citext", "changed")}),
    ("constraint dropped", "ALTER TABLE users DROP CONSTRAINT users_reputation_positive",
     {("constraint", "public.users.users_reputation_positive", "removed")}),
    ("constraint added not valid",
     "ALTER TABLE questions ADD CONSTRAINT questions_title_set CHECK (title <> '') NOT VALID",
     {("constraint", "public.questions.questions_title_set", "added")}),
    ("view changed",
     "CREATE OR REPLACE VIEW published_drafts AS SELECT id, body FROM drafts "
     "WHERE state <> 'draft'",
     {("view", "public.published_drafts", "changed")}),
    ("sequence altered", "ALTER SEQUENCE ticket_seq INCREMENT BY 10",
     {("sequence", "public.ticket_seq", "changed")}),
    ("domain constraint changed",
     "ALTER DOMAIN score DROP CONSTRAINT score_check; "
     "ALTER DOMAIN score ADD CONSTRAINT score_check CHECK (VALUE >= 1)",
     {("domain", "public.score", "changed")}),
    ("table added", "CREATE TABLE scratch (id integer)",
     {("table", "public.scratch", "added"), ("column", "public.scratch.id", "added"),
      ("privilege", "public.scratch", "added")}),
    ("materialized view dropped", "DROP MATERIALIZED VIEW draft_counts",
     {("materialized view", "public.draft_counts", "removed"),
      ("privilege", "public.draft_counts", "removed")}),
    ("function dropped", "DROP FUNCTION draft_points(drafts)",
     {("function", "public.draft_points(d drafts)", "removed"),
      ("privilege", "public.draft_points(d drafts)", "removed")}),
    ("schema table dropped", "DROP TABLE reporting.daily",
     {("table", "reporting.daily", "removed"), ("column", "reporting.daily.day", "removed"),
      ("column", "reporting.daily.n", "removed"), ("privilege", "reporting.daily", "removed"),
      ("constraint", "reporting.daily.daily_pkey", "removed"),
      ("index", "reporting.daily_pkey", "removed")}),
]  # fmt: skip


@pytest.mark.parametrize(("change", "sql", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_out_of_band_change_is_named_exactly(
    copy: str, change: str, sql: str, expected: set[tuple[str, str, str]]
) -> None:
    query(copy, sql.format(new=extension_versions(copy)[1]))
    result = drift(copy)
    assert result["status"] == "drifted" and not result["ok"], result
    assert result["error"]["type"] == "DriftDetected"
    assert named(result) == expected
    for diff in result["differences"]:
        if diff["change"] == "changed":
            assert diff["expected"] != diff["actual"] and set(diff["expected"]) == set(
                diff["actual"]
            )


def test_changed_fields_say_what_changed(copy: str) -> None:
    query(copy, "ALTER TABLE users ALTER COLUMN reputation SET DEFAULT 5")
    query(copy, "ALTER TABLE votes DISABLE TRIGGER votes_maintain_question_score")
    query(copy, f"REVOKE SELECT ON drafts FROM {ROLE}")
    by_object = {d["object"]: d for d in drift(copy)["differences"]}
    assert by_object["public.users.reputation"]["expected"] == {"default": "1"}
    assert by_object["public.users.reputation"]["actual"] == {"default": "5"}
    trigger = by_object["public.votes.votes_maintain_question_score"]
    assert (trigger["expected"], trigger["actual"]) == (
        {"enabled": "origin"}, {"enabled": "disabled"})  # fmt: skip
    grants = by_object["public.drafts"]
    assert grants["expected"] == {"grants": [f"{ROLE}:SELECT"]} and grants["actual"] == {
        "grants": []
    }


def test_ignore_patterns_leave_a_table_and_its_parts_out(copy: str) -> None:
    query(copy, "ALTER TABLE users ADD COLUMN nickname text")
    query(copy, "DROP INDEX users_email_lower_key")
    query(copy, "ALTER TABLE votes DISABLE TRIGGER votes_maintain_question_score")
    run = make_runner(copy, "/nonexistent", drift_ignore=("public.users",))
    result = run("drift")
    assert named(result) == {("trigger", "public.votes.votes_maintain_question_score", "changed")}
    everything = make_runner(copy, "/nonexistent", drift_ignore=("public.users", "*.votes"))
    assert everything("drift")["status"] == "in_sync"


def test_two_databases_built_by_the_same_migrations_compare_equal(
    pg_server: PgServer, built: str, tmp_path: Path
) -> None:
    """A second database built from scratch (other OIDs, other sequence values) stores the
    same snapshot body."""
    other = pg_server.create_database()
    try:
        dsn = pg_server.dsn_for(other)
        for path in (REPO / "migrations").glob("*.sql"):
            shutil.copy(path, tmp_path / path.name)
        old, _ = extension_versions(dsn)
        (tmp_path / "0100_drift_fixtures.up.sql").write_text(extra_migration(old))
        query(dsn, "CREATE TABLE burn_oids (id serial)")  # shift every OID after it
        query(dsn, "DROP TABLE burn_oids")
        assert make_runner(dsn, tmp_path)("migrate")["ok"]
        mine = query(dsn, "SELECT body FROM schema_migrations_snp")
        theirs = query(pg_server.dsn_for(built), "SELECT body FROM schema_migrations_snp")
        assert mine == theirs
    finally:
        pg_server.drop_database(other)
