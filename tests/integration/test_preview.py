"""The DBA preview: verified dry runs report locks and rewrites and change nothing."""

from __future__ import annotations

import psycopg
import pytest

from tests.fixtures.engine import REPO, MigrationDir, Run, make_runner, query, schema_snapshot

BASE = (
    "CREATE TABLE accounts (id bigint PRIMARY KEY, name varchar(50), score int);\n"
    "INSERT INTO accounts SELECT g, 'n' || g, g FROM generate_series(1, 100) g;\n"
)


def database_state(dsn: str) -> dict[str, object]:
    state: dict[str, object] = dict(schema_snapshot(dsn))
    state["history"] = query(dsn, "SELECT * FROM schema_migrations ORDER BY version")
    state["log"] = query(dsn, "SELECT count(*) FROM schema_migrations_log")
    state["rows"] = query(dsn, "SELECT sum(score), count(*) FROM accounts")
    state["filenodes"] = query(
        dsn, "SELECT relname, relfilenode FROM pg_class WHERE relnamespace = 'public'::regnamespace"
    )
    return state


@pytest.mark.parametrize(
    ("sql", "relation_mode", "rewrite"),
    [
        ("ALTER TABLE accounts ADD COLUMN note text;", "AccessExclusiveLock", False),
        ("CREATE INDEX accounts_score ON accounts (score);", "ShareLock", False),
        ("DROP TABLE accounts;", "AccessExclusiveLock", False),
        ("ALTER TABLE accounts ALTER COLUMN score TYPE bigint;", "AccessExclusiveLock", True),
    ],
)
def test_verify_reports_lock_modes_and_rewrites_and_changes_nothing(
    run: Run, mdir: MigrationDir, pg_dsn: str, sql: str, relation_mode: str, rewrite: bool
) -> None:
    mdir.pair("1", "base", BASE)
    run("migrate")
    mdir.pair("2", "change", sql)
    before = database_state(pg_dsn)
    result = run("migrate", dry_run=True, verify=True)
    assert result["ok"] and result["status"] == "planned", result["error"]
    entry = result["migrations"][0]
    assert entry["verified"] is True and entry["duration_ms"] >= 0
    assert {"relation": "public.accounts", "mode": relation_mode} in entry["locks"]
    assert entry["rewrites"] == (["public.accounts"] if rewrite else [])
    assert database_state(pg_dsn) == before


def test_verify_reports_a_lock_it_could_not_get(pg_dsn: str, mdir: MigrationDir) -> None:
    mdir.pair("1", "base", BASE)
    run = make_runner(pg_dsn, mdir.path)
    run("migrate")
    mdir.pair("2", "col", "ALTER TABLE accounts ADD COLUMN note text;")
    with psycopg.connect(pg_dsn) as other:
        other.execute("SELECT * FROM accounts LIMIT 1")  # holds ACCESS SHARE until commit
        result = run("migrate", dry_run=True, verify=True, tuning={"verify_lock_timeout_ms": 200})
    assert result["ok"] and result["status"] == "planned"
    entry = result["migrations"][0]
    assert entry["verified"] is False and entry["lock_conflict"]["line"] == 1
    assert any("could not get a lock" in w for w in result["warnings"])
    assert query(pg_dsn, "SELECT count(*) FROM information_schema.columns "
                         "WHERE column_name = 'note'") == [(0,)]  # fmt: skip


def test_verify_names_the_failing_statement_and_lists_no_transaction_scripts(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.pair("1", "base", BASE)
    mdir.write(
        "2_idx.up.sql",
        "-- patcher:no-transaction\nCREATE INDEX CONCURRENTLY a_name ON accounts (name);\n",
    )
    mdir.write("3_bad.up.sql", "UPDATE accounts SET score = 0 WHERE id = 1;\nSELECT 1/0;\n")
    result = run("migrate", dry_run=True, verify=True)
    assert result["status"] == "failed" and result["ok"] is False
    assert result["error"]["type"] == "MigrationFailed"
    assert (result["error"]["file"], result["error"]["line"]) == ("3_bad.up.sql", 2)
    first, second, third = result["migrations"]
    assert first["verified"] is True and first["locks"] == []  # accounts is new: no findings
    assert second["verified"] is False and second["statements"][0].startswith("CREATE INDEX")
    assert third["state"] == "failed"
    assert query(pg_dsn, "SELECT to_regclass('accounts')") == [(None,)]


def test_rollback_preview_is_verified_too(run: Run, mdir: MigrationDir, pg_dsn: str) -> None:
    mdir.pair("1", "base", BASE, "DROP TABLE accounts;")
    run("migrate")
    result = run("rollback", dry_run=True, verify=True)
    entry = result["migrations"][0]
    assert entry["direction"] == "down"
    assert {"relation": "public.accounts", "mode": "AccessExclusiveLock"} in entry["locks"]
    assert [r["code"] for r in entry["risks"]][:1] == ["DROP_TABLE"]
    assert query(pg_dsn, "SELECT count(*) FROM accounts") == [(100,)]


def test_risks_on_existing_tables_include_row_estimates(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.pair("1", "base", BASE)
    run("migrate")
    query(pg_dsn, "ANALYZE accounts")
    mdir.pair("2", "nn", "ALTER TABLE accounts ADD COLUMN flag int NOT NULL;")
    entry = run("migrate", dry_run=True)["migrations"][0]
    codes = {r["code"] for r in entry["risks"]}
    assert {"NOT_NULL_WITHOUT_DEFAULT", "ACCESS_EXCLUSIVE_LOCK"} <= codes
    assert any("100 rows" in r["explanation"] for r in entry["risks"])


def test_shipped_migrations_preview_reports_only_real_risks(pg_dsn: str) -> None:
    run = make_runner(pg_dsn, REPO / "migrations")

    def risks(result: dict[str, object]) -> set[tuple[int, str]]:
        assert result["ok"], result["error"]
        entries = result["migrations"]
        return {(m["version"], r["code"]) for m in entries for r in m["risks"]}  # type: ignore[attr-defined]

    # On a fresh database every table is new: only the two-index no-transaction script is a
    # real hazard (a failure between its statements leaves the first index built).
    fresh = risks(run("migrate", dry_run=True, verify=True))
    assert fresh == {(9, "MULTI_STATEMENT_NO_TRANSACTION")}
    # Once questions holds data, adding its score column takes a real ACCESS EXCLUSIVE lock,
    # and the trigger on votes blocks writes to it until the backfill commits (SHARE ROW
    # EXCLUSIVE; intended there, as its lint suppression says).
    run("migrate", target=7)
    later = risks(run("migrate", dry_run=True, verify=True))
    assert later == {
        (8, "ACCESS_EXCLUSIVE_LOCK"),
        (8, "CREATE_TRIGGER_LOCKS_TABLE"),
        (9, "MULTI_STATEMENT_NO_TRANSACTION"),
    }
