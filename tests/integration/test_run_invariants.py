"""SPEC 7 through the CLI on a real PostgreSQL: a migration's session state ends with it, the
run notices a released lock, a timed-out concurrent index is cleaned up or named, and a
least-privilege role migrates. (Deadline: tests/e2e/test_e2e_deadline.py; crashes at every
round trip: tests/faults/test_faults_crash.py.)"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from patcher.cli.main import main
from patcher.db import lock_key
from tests.fixtures.engine import MigrationDir, history, login_role, query, tables

KEY = lock_key("public", "schema_migrations")
NO_TX = "-- patcher:no-transaction\n"


def cli(mdir: MigrationDir, dsn: str, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    """``patcher <args> --json`` in-process; the parsed result."""
    capsys.readouterr()
    main([*args, "--json", "--source", str(mdir.path), "--database-url", dsn])
    return json.loads(capsys.readouterr().out)


def invalid_indexes(dsn: str) -> list[str]:
    rows = query(dsn, "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid")
    return [r[0] for r in rows]


def test_a_migrations_settings_end_with_it(
    mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """search_path, lock_timeout, statement_timeout and application_name a script SETs (with
    plain SET, which outlives COMMIT) do not reach the next migration."""
    mdir.pair(
        "1",
        "leaky",
        "CREATE SCHEMA other;\nSET search_path = other;\nSET lock_timeout = 0;\n"
        "SET statement_timeout = '1h';\nSELECT set_config('application_name', 'hijacked', false);",
    )
    mdir.pair(
        "2",
        "seen",
        "CREATE TABLE seen AS SELECT current_setting('search_path') AS search_path, "
        "current_setting('lock_timeout') AS lock_timeout, "
        "current_setting('statement_timeout') AS statement_timeout, "
        "current_setting('application_name') AS app, current_user::text AS who;",
    )
    result = cli(mdir, pg_dsn, capsys, "migrate")
    assert result["status"] == "applied", result["error"]
    assert "seen" in tables(pg_dsn), "the table landed in public, not in the leaked schema"
    ((search_path, lock_timeout, statement_timeout, app, who),) = query(
        pg_dsn, "SELECT * FROM public.seen"
    )
    assert (search_path, lock_timeout, statement_timeout) == ('"$user", public', "10s", "0")
    assert app.startswith("stackflowpatcher:cli-") and who == "postgres"


@pytest.fixture
def other_role(pg_dsn: str) -> Iterator[str]:
    name = f"patcher_other_{uuid.uuid4().hex[:8]}"
    query(pg_dsn, f"CREATE ROLE {name} NOLOGIN")
    yield name
    query(pg_dsn, f"DROP OWNED BY {name}")
    query(pg_dsn, f"DROP ROLE {name}")


def test_set_role_in_a_migration_does_not_reach_its_bookkeeping(
    mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str], other_role: str
) -> None:
    mdir.pair("1", "as_other", f"SET ROLE {other_role};\nSELECT 1;")
    mdir.pair("2", "after", "CREATE TABLE after_role AS SELECT current_user::text AS who;")
    result = cli(mdir, pg_dsn, capsys, "migrate")
    assert result["status"] == "applied", result["error"]
    assert history(pg_dsn) == [(1, False), (2, False)]
    assert query(pg_dsn, "SELECT who FROM after_role") == [("postgres",)]
    log = query(pg_dsn, "SELECT version, outcome FROM schema_migrations_log ORDER BY id")
    assert log == [(1, "applied"), (2, "applied")]


@pytest.mark.parametrize(
    "script",
    ["SELECT pg_advisory_unlock_all();", f"{NO_TX}DISCARD ALL;"],
    ids=["unlock_all", "discard_all"],
)
def test_a_released_lock_is_taken_back_and_reported(
    mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str], script: str
) -> None:
    mdir.pair("1", "releases", script)
    mdir.pair("2", "next", "CREATE TABLE next_one (id int);")
    result = cli(mdir, pg_dsn, capsys, "migrate")
    assert result["status"] == "applied", result["error"]
    assert any("released the run's advisory lock" in w for w in result["warnings"])
    assert history(pg_dsn) == [(1, False), (2, False)]


def test_a_lock_taken_by_another_session_stops_the_run_with_lock_lost(
    mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    mdir.pair("1", "releases", "SELECT pg_advisory_unlock_all();\nSELECT pg_sleep(1.5);")
    mdir.pair("2", "never", "CREATE TABLE never_run (id int);")
    with psycopg.connect(pg_dsn, autocommit=True, application_name="intruder") as intruder:
        stop = threading.Event()

        def grab() -> None:  # once version 1 let the lock go (it sleeps after), keep it
            while not stop.is_set():
                sleeping = intruder.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                    "AND query LIKE '%SELECT pg_sleep(1.5)%' AND pid <> pg_backend_pid()"
                ).fetchone()
                if sleeping and sleeping[0]:
                    row = intruder.execute("SELECT pg_try_advisory_lock(%s)", (KEY,)).fetchone()
                    assert row == (True,)
                    return
                time.sleep(0.02)

        grabber = threading.Thread(target=grab)
        grabber.start()
        try:
            result = cli(mdir, pg_dsn, capsys, "migrate")
        finally:
            stop.set()
            grabber.join()
        assert (result["status"], result["error"]["type"]) == ("failed", "LockLost")
        assert result["error"]["holder_application_name"] == "intruder"
        assert [(m["version"], m["state"]) for m in result["migrations"]] == [
            (1, "applied"),
            (2, "not_run"),
        ]
        assert "never_run" not in tables(pg_dsn) and history(pg_dsn) == [(1, False)]
    assert cli(mdir, pg_dsn, capsys, "migrate")["status"] == "applied"


def _hold_a_write_transaction(dsn: str, seconds: float) -> threading.Thread:
    """An open write transaction on t for ``seconds``: CREATE INDEX CONCURRENTLY waits for it."""
    ready = threading.Event()

    def hold() -> None:
        with psycopg.connect(dsn) as conn:
            conn.execute("INSERT INTO t VALUES (1)")
            ready.set()
            time.sleep(seconds)
            conn.rollback()

    thread = threading.Thread(target=hold)
    thread.start()
    ready.wait(5)
    return thread


def test_a_timed_out_concurrent_index_is_dropped_before_the_retry(
    mdir: MigrationDir,
    pg_dsn: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATCHER_LOCK_TIMEOUT", "300ms")
    mdir.pair("1", "t", "CREATE TABLE t (id int);")
    assert cli(mdir, pg_dsn, capsys, "migrate", "--target", "1")["status"] == "applied"
    mdir.pair("2", "idx", f"{NO_TX}CREATE INDEX CONCURRENTLY IF NOT EXISTS t_id ON t (id);")
    holder = _hold_a_write_transaction(pg_dsn, 0.8)  # gone before the retries run out
    try:
        result = cli(mdir, pg_dsn, capsys, "migrate")
    finally:
        holder.join()
    assert result["status"] == "applied", result["error"]
    assert invalid_indexes(pg_dsn) == []
    assert query(pg_dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_id'::regclass")[
        0
    ] == (True,)
    assert history(pg_dsn) == [(1, False), (2, False)]


def test_a_concurrent_index_that_keeps_timing_out_names_its_invalid_leftover(
    mdir: MigrationDir,
    pg_dsn: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATCHER_LOCK_TIMEOUT", "200ms")
    mdir.pair("1", "t", "CREATE TABLE t (id int);")
    assert cli(mdir, pg_dsn, capsys, "migrate", "--target", "1")["status"] == "applied"
    mdir.pair("2", "idx", f"{NO_TX}CREATE INDEX CONCURRENTLY t_id ON t (id);")
    holder = _hold_a_write_transaction(pg_dsn, 12)
    try:
        result = cli(mdir, pg_dsn, capsys, "migrate")
        assert (result["status"], result["error"]["type"]) == ("failed", "MigrationFailed")
        message = result["error"]["message"]
        assert "lock_timeout" in message and "earlier statements" not in message
        left = invalid_indexes(pg_dsn)
        assert left == ["t_id"], "only the last attempt's leftover remains"
        assert "DROP INDEX CONCURRENTLY IF EXISTS public.t_id" in message
        assert query(pg_dsn, "SELECT version, dirty FROM schema_migrations ORDER BY 1") == [
            (1, False),
            (2, True),
        ]
    finally:
        holder.join()
    preview = cli(mdir, pg_dsn, capsys, "repair", "--dry-run")
    assert "repair will drop INVALID index public.t_id" in " ".join(preview["warnings"])
    assert invalid_indexes(pg_dsn) == ["t_id"], "a dry run changes nothing"
    repaired = cli(mdir, pg_dsn, capsys, "repair")
    assert repaired["status"] == "applied"
    assert "repair dropped INVALID index public.t_id" in " ".join(repaired["warnings"])
    assert cli(mdir, pg_dsn, capsys, "migrate")["status"] == "applied"
    assert invalid_indexes(pg_dsn) == [] and history(pg_dsn) == [(1, False), (2, False)]


def test_an_invalid_index_kept_by_if_not_exists_is_never_recorded_as_applied(
    mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    query(pg_dsn, "CREATE TABLE t (id int)")
    query(pg_dsn, "INSERT INTO t VALUES (1), (1)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        query(pg_dsn, "CREATE UNIQUE INDEX CONCURRENTLY t_u ON t (id)")
    assert invalid_indexes(pg_dsn) == ["t_u"]  # an INVALID index from an earlier attempt
    query(pg_dsn, "DELETE FROM t")
    mdir.pair("1", "u", f"{NO_TX}CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_u ON t (id);")
    result = cli(mdir, pg_dsn, capsys, "migrate")
    assert (result["status"], result["error"]["type"]) == ("failed", "MigrationFailed")
    assert "INVALID" in result["error"]["message"] and "public.t_u" in result["error"]["message"]
    assert query(pg_dsn, "SELECT version, dirty FROM schema_migrations") == [(1, True)]


@pytest.fixture
def least_privilege_dsn(pg_dsn: str) -> Iterator[str]:
    """A role with CONNECT on the database and USAGE, CREATE on public only (no CREATE on
    the database: CREATE SCHEMA IF NOT EXISTS would fail)."""
    grants = (
        "GRANT CONNECT ON DATABASE {db} TO {role}",
        # PUBLIC had CREATE on public before PG 15: take it away so the role's own grant is
        # what counts on every major (as on 15+, and as on any database hardened by hand).
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        "GRANT USAGE, CREATE ON SCHEMA public TO {role}",
    )
    with login_role(pg_dsn, "patcher_lp", grants) as dsn:
        yield dsn


def test_a_least_privilege_role_migrates(
    mdir: MigrationDir, least_privilege_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    mdir.pair("1", "t", "CREATE TABLE t (id int);", "DROP TABLE t;")
    result = cli(mdir, least_privilege_dsn, capsys, "migrate")
    assert result["status"] == "applied", result["error"]
    assert cli(mdir, least_privilege_dsn, capsys, "rollback")["status"] == "reverted"


def test_a_missing_privilege_is_a_config_error_naming_the_grants(
    mdir: MigrationDir, pg_dsn: str, least_privilege_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    role = urlsplit(least_privilege_dsn).username
    query(pg_dsn, f"REVOKE CREATE ON SCHEMA public FROM {role}")
    mdir.pair("1", "t", "CREATE TABLE t (id int);")
    result = cli(mdir, least_privilege_dsn, capsys, "migrate")
    assert (result["status"], result["error"]["type"]) == ("invalid", "ConfigError")
    assert "privilege" in result["error"]["message"]
    assert "USAGE and CREATE" in result["error"]["message"]
