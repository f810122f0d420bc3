"""Dry-run lock claims that need the catalog or the script's own history, against what
``verify`` measured on PostgreSQL (issue 28 item 11): DROP FUNCTION / VIEW ... CASCADE lock
the tables and materialized views the cascade reaches; a column renamed earlier in the script is
followed to its type; CREATE TABLE ... REFERENCES and CREATE TRIGGER take SHARE ROW EXCLUSIVE
on the existing table; DROP DEFAULT has its own finding, beside the ACCESS EXCLUSIVE lock."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.engine import MigrationDir, Run

BASE = """
CREATE TABLE a (id bigint PRIMARY KEY);
CREATE TABLE b (id bigint PRIMARY KEY, n int DEFAULT 0);
CREATE TABLE c (id bigint, data bytea, label varchar(20));
CREATE TABLE d (id bigint);
CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER a_trg BEFORE INSERT ON a FOR EACH ROW EXECUTE PROCEDURE trg();
CREATE FUNCTION one() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 1';
ALTER TABLE b ALTER n SET DEFAULT one();
CREATE FUNCTION twice(bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
CREATE INDEX d_twice ON d (twice(id));
CREATE VIEW v AS SELECT id FROM a;
CREATE VIEW v2 AS SELECT id FROM v;
CREATE MATERIALIZED VIEW mv AS SELECT id FROM v;
"""
RELATIONS = {"public.a", "public.b", "public.c", "public.d", "public.mv"}


def dry_run(run: Run, mdir: MigrationDir, sql: str) -> dict[str, Any]:
    mdir.pair("1", "base", BASE)
    assert run("migrate")["ok"]
    mdir.pair("2", "change", sql)
    result = run("migrate", dry_run=True, verify=True)
    assert result["ok"], result["error"]
    [entry] = result["migrations"]
    assert entry["verified"], entry
    return dict(entry)


def measured(entry: dict[str, Any], mode: str) -> set[str]:
    return {
        lock["relation"]
        for lock in entry["locks"]
        if lock["mode"] == mode and lock["relation"] in RELATIONS
    }


def claimed(entry: dict[str, Any], *codes: str) -> set[str]:
    return {
        "public." + str(r["table"]).removeprefix("public.")
        for r in entry["risks"]
        if r["code"] in codes
    }


@pytest.mark.parametrize(
    ("sql", "locked"),
    [
        ("DROP FUNCTION trg() CASCADE;", {"public.a"}),  # its trigger on a
        ("DROP FUNCTION one CASCADE;", {"public.b"}),  # a column default of b
        ("DROP FUNCTION twice(bigint) CASCADE;", {"public.d"}),  # an expression index on d
        ("DROP VIEW v CASCADE;", {"public.mv"}),  # a materialized view on it (v2: a view)
        ("DROP VIEW v2 CASCADE;", set()),  # nothing stored depends on it
    ],
)
def test_drop_cascade_locks_what_it_reaches(
    run: Run, mdir: MigrationDir, sql: str, locked: set[str]
) -> None:
    entry = dry_run(run, mdir, sql)
    assert measured(entry, "AccessExclusiveLock") == locked  # the ground truth
    assert claimed(entry, "ACCESS_EXCLUSIVE_LOCK") == locked, entry["risks"]
    reached = [r for r in entry["risks"] if r["code"] == "ACCESS_EXCLUSIVE_LOCK"]
    assert all("reached by the CASCADE of" in r["explanation"] for r in reached)


@pytest.mark.parametrize(
    ("sql", "rewritten"),
    [
        (
            "ALTER TABLE c RENAME COLUMN data TO body;\nALTER TABLE c ALTER COLUMN body TYPE text;",
            {"public.c"},  # bytea -> text: converted through text I/O, every row
        ),
        (
            "ALTER TABLE c RENAME COLUMN label TO tag;\nALTER TABLE c ALTER COLUMN tag TYPE text;",
            set(),  # varchar -> text: binary coercible, no rewrite
        ),
        (
            "ALTER TABLE c RENAME data TO x;\nALTER TABLE c RENAME x TO y;\n"
            "ALTER TABLE c ALTER y TYPE text;",
            {"public.c"},  # renamed twice
        ),
    ],
)
def test_a_renamed_column_is_followed_to_its_type(
    run: Run, mdir: MigrationDir, sql: str, rewritten: set[str]
) -> None:
    entry = dry_run(run, mdir, sql)
    assert set(entry["rewrites"]) == rewritten
    assert claimed(entry, "TABLE_REWRITE") == rewritten, entry["risks"]


@pytest.mark.parametrize(
    ("sql", "code", "locked"),
    [
        (
            "CREATE TABLE e (id bigint, a_id bigint REFERENCES a (id));",
            "FOREIGN_KEY_LOCKS_REFERENCED",
            {"public.a"},
        ),
        (
            "CREATE TABLE e (id bigint, b_id bigint, FOREIGN KEY (b_id) REFERENCES b);",
            "FOREIGN_KEY_LOCKS_REFERENCED",
            {"public.b"},
        ),
        (
            "CREATE TRIGGER d_trg BEFORE INSERT ON d FOR EACH ROW EXECUTE PROCEDURE trg();",
            "CREATE_TRIGGER_LOCKS_TABLE",
            {"public.d"},
        ),
        (
            "CREATE TABLE e (id bigint PRIMARY KEY, up bigint REFERENCES e (id));\n"
            "CREATE TRIGGER e_trg BEFORE INSERT ON e FOR EACH ROW EXECUTE PROCEDURE trg();",
            "CREATE_TRIGGER_LOCKS_TABLE",
            set(),  # a new table: nothing existing waits
        ),
    ],
)
def test_share_row_exclusive_on_an_existing_table_is_reported(
    run: Run, mdir: MigrationDir, sql: str, code: str, locked: set[str]
) -> None:
    entry = dry_run(run, mdir, sql)
    assert measured(entry, "ShareRowExclusiveLock") == locked
    both = ("FOREIGN_KEY_LOCKS_REFERENCED", "CREATE_TRIGGER_LOCKS_TABLE")
    assert claimed(entry, *both) == claimed(entry, code) == locked, entry["risks"]


def test_drop_default_is_its_own_finding(run: Run, mdir: MigrationDir) -> None:
    entry = dry_run(run, mdir, "ALTER TABLE b ALTER COLUMN n DROP DEFAULT;")
    assert measured(entry, "AccessExclusiveLock") == {"public.b"}
    assert claimed(entry, "ACCESS_EXCLUSIVE_LOCK") == {"public.b"}
    assert claimed(entry, "DROP_DEFAULT") == {"public.b"}
    [finding] = [r for r in entry["risks"] if r["code"] == "DROP_DEFAULT"]
    assert "INSERTs that leave it out now write NULL" in finding["explanation"]
