"""Dry runs decide rewrites from the catalog: the claim (a TABLE_REWRITE risk) must equal what
``verify`` measured (the table's storage file changed), case by case (issue 17's misses and
false claims among them)."""

from __future__ import annotations

import pytest

from tests.fixtures.engine import MigrationDir, Run

BASE = """
CREATE TABLE t (id bigint PRIMARY KEY, b bytea, tx text, v varchar(50), i int,
                ts timestamp, n numeric(10, 2));
INSERT INTO t SELECT g, 'x', 'y', 'z', g, now(), 1.5 FROM generate_series(1, 50) g;
CREATE DOMAIN short_code AS varchar(50);
CREATE DOMAIN checked_code AS varchar(50) CHECK (VALUE <> '');
CREATE FUNCTION rand_code() RETURNS text LANGUAGE sql VOLATILE AS $$ SELECT md5(random()::text) $$;
CREATE FUNCTION fixed_code() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'c' $$;
"""
CASES = [
    ("ALTER TABLE t ALTER b TYPE text USING b::text;", True),  # bytea -> text: I/O, rewrites
    ("ALTER TABLE t ALTER tx TYPE varchar(10);", True),  # text -> varchar(n): every value checked
    ("ALTER TABLE t ALTER tx TYPE varchar;", False),
    ("ALTER TABLE t ALTER v TYPE varchar(20);", True),  # shrinking
    ("ALTER TABLE t ALTER v TYPE varchar(100);", False),
    ("ALTER TABLE t ALTER v TYPE text;", False),
    ("ALTER TABLE t ALTER v TYPE short_code;", False),  # a domain over the same type
    ("ALTER TABLE t ALTER v TYPE checked_code;", True),  # a domain with a CHECK: every row
    ("ALTER TABLE t ALTER v TYPE short_code;\nALTER TABLE t ALTER v TYPE varchar(50);", True),
    ("ALTER TABLE t ALTER i TYPE bigint;", True),
    ("ALTER TABLE t ALTER i TYPE bigint USING i + 1;", True),
    ("ALTER TABLE t ALTER n TYPE numeric(12, 2);", False),
    ("ALTER TABLE t ALTER n TYPE numeric(8, 2);", True),
    (
        "SET LOCAL timezone = 'UTC';\n"
        "ALTER TABLE t ALTER ts TYPE timestamptz USING ts::timestamptz;",
        False,
    ),
    ("SET LOCAL timezone = 'Europe/Paris';\nALTER TABLE t ALTER ts TYPE timestamptz;", True),
    ("ALTER TABLE t ADD COLUMN code text DEFAULT rand_code();", True),  # a volatile UDF
    ("ALTER TABLE t ADD COLUMN code text DEFAULT fixed_code();", False),
    (
        "CREATE FUNCTION fresh() RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN 'f'; END $$;\n"
        "ALTER TABLE t ADD COLUMN code text DEFAULT fresh();",  # VOLATILE by default, not inlined
        True,
    ),
    ("ALTER TABLE t ADD COLUMN at timestamptz DEFAULT now();", False),
]


@pytest.mark.parametrize(("sql", "rewrites"), CASES)
def test_rewrite_claim_matches_what_verify_measured(
    run: Run, mdir: MigrationDir, sql: str, rewrites: bool
) -> None:
    mdir.pair("1", "base", BASE)
    assert run("migrate")["ok"]
    mdir.pair("2", "change", sql)
    result = run("migrate", dry_run=True, verify=True)
    assert result["ok"], result["error"]
    [entry] = result["migrations"]
    claims = [r for r in entry["risks"] if r["code"] == "TABLE_REWRITE"]
    assert entry["verified"] is True
    assert (entry["rewrites"] == ["public.t"]) is rewrites  # the ground truth
    assert bool(claims) is rewrites, claims
    assert all("may rewrite" not in r["explanation"] for r in claims)  # decided, not guessed
