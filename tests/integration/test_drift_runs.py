"""Schema snapshots through the runs that store them, and drift's bad input (SPEC section 13):
which runs store a snapshot and which write nothing, a database from before snapshots, the
snapshot table altered, truncated, corrupted or from a newer version, a role that cannot read
part of the catalog, the warning and audit row before a run on a drifted database, the dry
run's DRIFTED_OBJECT, the CLI's output and exit codes, and 10,000 objects."""

from __future__ import annotations

import time
from typing import Any

import pytest

from patcher.cli.main import main
from tests.fixtures.engine import MigrationDir, Run, login_role, make_runner, query, tables

pytestmark = pytest.mark.db

SNP = "schema_migrations_snp"


def setup(mdir: MigrationDir, run: Run) -> None:
    mdir.pair("1", "items", "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);",
              "DROP TABLE items;")  # fmt: skip
    mdir.pair("2", "items_name", "CREATE INDEX items_name_idx ON items (name);",
              "DROP INDEX items_name_idx;")  # fmt: skip
    assert run("migrate")["ok"]


def snapshot_row(dsn: str) -> tuple[Any, ...]:
    return query(dsn, f"SELECT version, format, objects FROM {SNP}")[0]


def test_migrate_rollback_and_baseline_store_the_schema_they_leave(
    pg_dsn: str, mdir: MigrationDir, run: Run
) -> None:
    setup(mdir, run)
    assert snapshot_row(pg_dsn)[:2] == (2, 1)
    assert run("drift")["status"] == "in_sync"
    assert run("rollback")["ok"]
    assert snapshot_row(pg_dsn)[0] == 1  # the down script's schema, stored with its row
    assert run("drift")["status"] == "in_sync"
    assert run("rollback")["ok"]
    assert snapshot_row(pg_dsn)[0] is None  # nothing applied: an empty schema
    assert run("drift")["status"] == "in_sync"
    query(pg_dsn, "DROP TABLE schema_migrations, schema_migrations_log, schema_migrations_snp")
    query(pg_dsn, "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL)")
    assert run("baseline", target=1)["ok"]
    assert snapshot_row(pg_dsn)[0] == 1
    assert run("drift")["status"] == "in_sync"


def test_an_up_to_date_run_writes_nothing(pg_dsn: str, mdir: MigrationDir, run: Run) -> None:
    setup(mdir, run)
    before = query(pg_dsn, f"SELECT taken_at, xmin::text FROM {SNP}")
    assert run("migrate")["status"] == "up_to_date"
    assert query(pg_dsn, f"SELECT taken_at, xmin::text FROM {SNP}") == before


def test_a_database_from_before_snapshots_keeps_working(
    pg_dsn: str, mdir: MigrationDir, run: Run
) -> None:
    setup(mdir, run)
    query(pg_dsn, f"DROP TABLE {SNP}")  # as an earlier version of the tool left it
    result = run("drift")
    assert result["status"] == "invalid" and not result["ok"]
    assert result["error"]["type"] == "MissingSnapshot"
    assert "does not exist" in result["error"]["message"]
    assert "patcher migrate" in result["error"]["message"]
    assert run("migrate")["status"] == "up_to_date"
    assert SNP not in tables(pg_dsn)  # an up-to-date run creates nothing
    mdir.pair("3", "items_note", "ALTER TABLE items ADD COLUMN note text;")
    assert run("migrate")["ok"]
    assert snapshot_row(pg_dsn)[0] == 3
    assert run("drift")["status"] == "in_sync"


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (f"TRUNCATE {SNP}", "is empty"),
        (f"ALTER TABLE {SNP} DROP COLUMN body", "was altered"),
        (f"UPDATE {SNP} SET format = 2, tool_version = '9.1.0'", "StackFlowPatcher 9.1.0"),
        (f'UPDATE {SNP} SET body = \'{{"not": "a list"}}\'', "cannot be read"),
        (f"UPDATE {SNP} SET body = '[[1, 2]]'", "cannot be read"),
    ],
)
def test_a_damaged_snapshot_is_refused_clearly(
    pg_dsn: str, mdir: MigrationDir, run: Run, damage: str, says: str
) -> None:
    setup(mdir, run)
    query(pg_dsn, damage)
    result = run("drift")
    assert result["status"] == "invalid" and result["error"]["type"] == "MissingSnapshot"
    assert says in result["error"]["message"], result["error"]["message"]
    assert result["error"]["table"] == f"public.{SNP}"


def test_an_altered_snapshot_table_never_stops_a_migration(
    pg_dsn: str, mdir: MigrationDir, run: Run
) -> None:
    setup(mdir, run)
    query(pg_dsn, f"ALTER TABLE {SNP} DROP COLUMN body")
    mdir.pair("3", "items_note", "ALTER TABLE items ADD COLUMN note text;")
    result = run("migrate")
    assert result["ok"] and result["status"] == "applied", result["error"]
    assert any("not the snapshot table" in w for w in result["warnings"]), result["warnings"]
    query(pg_dsn, f"DROP TABLE {SNP}")
    mdir.pair("4", "items_more", "ALTER TABLE items ADD COLUMN more text;")
    assert run("migrate")["ok"]
    assert run("drift")["status"] == "in_sync"  # recreated by the next run


def test_a_run_on_a_drifted_database_warns_and_audits_before_applying(
    pg_dsn: str, mdir: MigrationDir, run: Run
) -> None:
    setup(mdir, run)
    query(pg_dsn, "ALTER TABLE items ADD COLUMN hotfix text")
    mdir.pair("3", "items_note", "ALTER TABLE items ADD COLUMN note text;")
    result = run("migrate")
    assert result["ok"], result["error"]
    warning = next(w for w in result["warnings"] if "drifted" in w)
    assert "column public.items.hotfix added" in warning and "takes the drift in" in warning
    log = query(pg_dsn, "SELECT version, outcome, error FROM schema_migrations_log ORDER BY id")
    drift_at = next(i for i, row in enumerate(log) if row[1] == "drift")
    assert "public.items.hotfix" in log[drift_at][2]
    assert log[drift_at + 1][:2] == (3, "applied")  # the drift is logged before the change
    assert run("drift")["status"] == "in_sync"  # the new snapshot took the drift in


def test_a_dry_run_flags_drifted_objects_its_scripts_touch(
    pg_dsn: str, mdir: MigrationDir, run: Run
) -> None:
    setup(mdir, run)
    query(pg_dsn, "DROP INDEX items_name_idx")
    mdir.pair("3", "items_note", "ALTER TABLE items ADD COLUMN note text;")
    mdir.pair("4", "elsewhere", "CREATE TABLE elsewhere (id int);")
    result = run("migrate", dry_run=True)
    assert result["status"] == "planned", result["error"]
    risks = {m["version"]: [r for r in m["risks"] if r["code"] == "DRIFTED_OBJECT"]
             for m in result["migrations"]}  # fmt: skip
    assert [r["table"] for r in risks[3]] == ["public.items_name_idx"]
    assert "removed" in risks[3][0]["explanation"]
    assert risks[4] == []


def test_a_role_that_cannot_read_part_of_the_catalog(pg_dsn: str, mdir: MigrationDir) -> None:
    """Objects of the kinds it cannot read are listed as unreadable, never as removed; its
    migrations still run (without a snapshot, saying so)."""
    grants = ("GRANT CREATE ON DATABASE {db} TO {role}", "GRANT CREATE ON SCHEMA public TO {role}")
    with login_role(pg_dsn, "driftrole", grants) as dsn:
        run = make_runner(dsn, mdir.path)
        mdir.pair("1", "f", "CREATE TABLE t (id int); CREATE FUNCTION f() RETURNS int "
                  "LANGUAGE sql AS 'SELECT 1';")  # fmt: skip
        assert run("migrate")["ok"]
        query(pg_dsn, "REVOKE SELECT ON pg_catalog.pg_proc FROM PUBLIC")
        try:
            result = run("drift")
            assert result["status"] == "in_sync", result
            warning = next(w for w in result["warnings"] if "unreadable" in w)
            assert "function public.f()" in warning
            mdir.pair("2", "g", "ALTER TABLE t ADD COLUMN note text;")
            applied = run("migrate")
            assert applied["ok"], applied["error"]
            assert any("cannot read the catalog" in w for w in applied["warnings"])
        finally:
            query(pg_dsn, "GRANT SELECT ON pg_catalog.pg_proc TO PUBLIC")


def test_cli_drift_formats_and_exit_codes(
    pg_dsn: str, mdir: MigrationDir, run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    setup(mdir, run)
    args = ["drift", "--database-url", pg_dsn, "--source", str(mdir.path)]
    assert main(args) == 0
    assert "drift: in_sync" in capsys.readouterr().out
    query(pg_dsn, "DROP INDEX items_name_idx")
    assert main(args) == 1
    text = capsys.readouterr().out
    assert "removed  index" in text and "public.items_name_idx" in text
    assert main([*args, "--format", "markdown"]) == 1
    markdown = capsys.readouterr().out
    assert "| kind | object | change | expected | actual |" in markdown
    assert "| index | `public.items_name_idx` | removed |" in markdown
    query(pg_dsn, f"DROP TABLE {SNP}")
    assert main([*args, "--json"]) == 1
    assert '"MissingSnapshot"' in capsys.readouterr().out


@pytest.mark.slow
def test_ten_thousand_objects(pg_dsn: str, mdir: MigrationDir, run: Run) -> None:
    """1,250 tables of 4 columns: 10,000 objects and more; the snapshot under 1 MB, drift
    well under 30 s."""
    mdir.pair("1", "many", """
DO $$ BEGIN FOR i IN 1..1250 LOOP
  EXECUTE format('CREATE TABLE t%s (id bigint PRIMARY KEY, a text, b integer DEFAULT 0, '
                 'c timestamptz)', i);
END LOOP; END $$;""")  # fmt: skip
    assert run("migrate")["ok"]
    version, _, objects = snapshot_row(pg_dsn)
    assert version == 1
    assert objects >= 10_000
    size = query(pg_dsn, f"SELECT pg_column_size(body) FROM {SNP}")[0][0]
    assert size < 1_000_000, size
    started = time.perf_counter()
    result = run("drift")
    assert result["status"] == "in_sync"
    assert time.perf_counter() - started < 30
    query(pg_dsn, "ALTER TABLE t777 ALTER COLUMN b SET DEFAULT 1")
    assert {d["object"] for d in run("drift")["differences"]} == {"public.t777.b"}
