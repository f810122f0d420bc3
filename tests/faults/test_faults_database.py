"""Database faults: bad credentials, unreachable or hanging hosts, a server restarting mid-run,
read-only targets, and history tables other tools made."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from patcher.aws.handler import lambda_handler
from patcher.db import lock_key
from tests.faults.faultkit import (
    DB_PASSWORD,
    SLEEP,
    FakeContext,
    OwnCluster,
    closed_port,
    in_background,
    set_sleep,
    sleeping_pid,
    wait_for,
)
from tests.fixtures.engine import MigrationDir, make_runner, query, tables


def handler_env(monkeypatch: pytest.MonkeyPatch, source: Path, dsn: str) -> None:
    for name in ("PATCHER_DB_SECRET_ARN", "PATCHER_SCHEMA", "PATCHER_TABLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATCHER_SOURCE", str(source))
    monkeypatch.setenv("PATCHER_DATABASE_URL", dsn)
    monkeypatch.setenv("PATCHER_LOCK_WAIT_SECONDS", "5")


def invoke(payload: Any, time_left_ms: int = 900_000) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    result = lambda_handler(payload, FakeContext(time_left_ms=time_left_ms))
    return result, time.monotonic() - started


# --------------------------------------------------------------------------- reaching it


def test_wrong_password_is_refused_quickly_without_printing_it(
    own_cluster: OwnCluster, own_db: str, mdir: MigrationDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    wrong = own_db.replace(DB_PASSWORD, DB_PASSWORD[::-1])
    handler_env(monkeypatch, mdir.path, wrong)
    result, took = invoke({"action": "migrate"})
    assert result["ok"] is False and result["status"] == "failed"
    assert result["error"]["type"] == "DatabaseUnavailable"
    assert "password authentication failed" in result["error"]["message"]
    assert DB_PASSWORD[::-1] not in str(result)
    assert took < 5
    assert tables(own_db) == set()


def test_closed_port_fails_at_once(mdir: MigrationDir, monkeypatch: pytest.MonkeyPatch) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    handler_env(
        monkeypatch, mdir.path, f"postgresql://app:{DB_PASSWORD}@127.0.0.1:{closed_port()}/x"
    )
    result, took = invoke({"action": "migrate"})
    assert result["status"] == "failed" and result["error"]["type"] == "DatabaseUnavailable"
    assert "cannot connect to PostgreSQL" in result["error"]["message"]
    assert took < 3


@pytest.mark.slow
def test_a_host_that_never_answers_is_bounded_by_the_connect_timeout(
    mdir: MigrationDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listener that accepts TCP but never speaks: a black-holed or overloaded server."""
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes handshakes; nobody ever answers
        port = silent.getsockname()[1]
        handler_env(monkeypatch, mdir.path, f"postgresql://app:{DB_PASSWORD}@127.0.0.1:{port}/x")
        result, took = invoke({"action": "migrate"})
        # Near the deadline the wait shrinks: 34 s left, 30 s margin -> 4 s, not 10.
        late, late_took = invoke({"action": "migrate"}, time_left_ms=34_000)
    assert result["status"] == "failed" and result["error"]["type"] == "DatabaseUnavailable"
    assert "timeout" in result["error"]["message"]
    print(f"hanging host answered in {took:.2f}s, near the deadline in {late_took:.2f}s")
    assert took < 12, f"took {took:.1f}s; the bound is PostgresBackend's connect_timeout (10 s)"
    assert late["error"]["type"] == "DatabaseUnavailable"
    assert late_took < 6, f"took {late_took:.1f}s with 4 s of budget left"


# --------------------------------------------------------------------------- restarts


def test_server_restart_during_a_migration(
    own_cluster: OwnCluster, own_db: str, mdir: MigrationDir
) -> None:
    mdir.pair("1", "base", "CREATE TABLE base (id int);")
    mdir.pair("2", "slow", f"CREATE TABLE half (id int);\n{SLEEP}\n")
    run = make_runner(own_db, mdir.path)
    set_sleep(own_db, 60)
    future = in_background(lambda: run("migrate", request_id="restart-victim"))
    wait_for("the migration to sleep", lambda: sleeping_pid(own_db))
    own_cluster.restart()
    result = future.result(timeout=30)
    assert result["status"] == "failed" and result["error"]["type"] == "MigrationFailed"
    assert "connection was lost" in result["error"]["message"]
    assert [m["state"] for m in result["migrations"]] == ["applied", "failed"]
    assert query(own_db, "SELECT version, dirty FROM schema_migrations") == [(1, False)]
    assert "half" not in tables(own_db)
    set_sleep(own_db, 0)
    again = run("migrate")
    assert again["status"] == "applied" and again["current_version"] == 2


def test_server_restart_while_waiting_for_the_lock(
    own_cluster: OwnCluster, own_db: str, mdir: MigrationDir
) -> None:
    """A waiter whose connection dies gets a structured result, never an exception."""
    mdir.pair("1", "base", "CREATE TABLE base (id int);")
    run = make_runner(own_db, mdir.path, lock_wait_seconds=30)
    holder = psycopg.connect(own_db, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("public", "schema_migrations"),))
    future = in_background(lambda: run("migrate", request_id="waiter"))
    wait_for("the waiter to poll the lock", lambda: polling(own_db, "stackflowpatcher:waiter"))
    own_cluster.restart()
    holder.close()
    result = future.result(timeout=30)
    assert result["ok"] is False and result["status"] == "failed"
    assert result["error"]["type"] == "DatabaseUnavailable"
    assert "connection" in result["error"]["message"] and "run again" in result["error"]["message"]
    assert run("migrate")["status"] == "applied"


def polling(dsn: str, application_name: str) -> bool:
    """Whether that session has tried the advisory lock (and is now between two tries)."""
    rows = query(
        dsn,
        "SELECT 1 FROM pg_stat_activity WHERE application_name = %s AND query LIKE %s",
        (application_name, "%pg_try_advisory_lock%"),
    )
    return bool(rows)


# --------------------------------------------------------------------------- read-only targets


def test_default_transaction_read_only_target_is_refused_before_anything(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    run = make_runner(pg_dsn, mdir.path)
    assert run("migrate")["status"] == "applied"
    mdir.pair("2", "b", "CREATE TABLE b (id int);")
    dbname = psycopg.conninfo.conninfo_to_dict(pg_dsn)["dbname"]
    query(pg_dsn, f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on')
    before = query(pg_dsn, "SELECT count(*) FROM schema_migrations_log")
    for action in ("migrate", "rollback", "repair"):
        result = run(action)
        assert result["status"] == "failed", result
        assert result["error"]["type"] == "DatabaseUnavailable"
        assert "read-only" in result["error"]["message"]
        assert "writer" in result["error"]["message"]
    assert run("status")["status"] == "planned"  # reading still works
    assert run("migrate", dry_run=True)["status"] == "planned"
    assert query(pg_dsn, "SELECT count(*) FROM schema_migrations_log") == before
    assert tables(pg_dsn) == {
        "a",
        "schema_migrations",
        "schema_migrations_log",
        "schema_migrations_snp",
    }


@pytest.mark.slow
def test_hot_standby_target_is_refused(own_cluster: OwnCluster, mdir: MigrationDir) -> None:
    """A real streaming replica of the suite's own cluster."""
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    with own_cluster.standby() as standby_dsn:
        run = make_runner(standby_dsn, mdir.path)
        assert query(standby_dsn, "SELECT pg_is_in_recovery()") == [(True,)]
        result = run("migrate")
        assert result["status"] == "failed" and result["error"]["type"] == "DatabaseUnavailable"
        assert "read-only" in result["error"]["message"]
        assert "hot standby" in result["error"]["message"]
        assert run("status")["status"] == "planned"


# --------------------------------------------------------------------------- foreign history


GOLANG_MIGRATE = "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, " \
    "dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (3, false);"  # fmt: skip
DBMATE = "CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY); " \
    "INSERT INTO schema_migrations VALUES ('20240101000000');"  # fmt: skip
FOREIGN_LOG = "CREATE TABLE schema_migrations_log (id serial PRIMARY KEY, line text); " \
    "INSERT INTO schema_migrations_log (line) VALUES ('theirs');"  # fmt: skip


def snapshot(dsn: str) -> Any:
    cols = query(
        dsn,
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' ORDER BY 1, 2",
    )
    rows = {t: sorted(query(dsn, f'SELECT * FROM "{t}"'), key=repr) for t in tables(dsn)}
    return cols, rows


@pytest.mark.parametrize(
    ("ddl", "needle"),
    [
        (GOLANG_MIGRATE, "golang-migrate"),
        (DBMATE, "not made by StackFlowPatcher"),
        (FOREIGN_LOG, "schema_migrations_log exists but was not made by StackFlowPatcher"),
    ],
    ids=["golang-migrate", "dbmate", "foreign-log"],
)
def test_a_history_table_another_tool_made_is_refused_and_never_altered(
    pg_dsn: str, mdir: MigrationDir, ddl: str, needle: str
) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    query(pg_dsn, ddl)
    before = snapshot(pg_dsn)
    run = make_runner(pg_dsn, mdir.path)
    requests: list[dict[str, Any]] = [
        {"action": "migrate"}, {"action": "migrate", "dry_run": True},
        {"action": "migrate", "dry_run": True, "verify": True}, {"action": "status"},
        {"action": "rollback"}, {"action": "repair"}, {"action": "baseline", "target": 1},
    ]  # fmt: skip
    for fields in requests:
        result = run(**fields)
        writes = fields["action"] in ("migrate", "baseline") and not fields.get("dry_run")
        if result["ok"] and not writes:  # a read that needs nothing of the foreign table
            assert result["status"] in ("planned", "up_to_date"), (fields, result)
            continue
        assert result["ok"] is False and result["status"] == "invalid", (fields, result)
        assert result["error"]["type"] == "ConfigError"
        assert needle in result["error"]["message"] and "untouched" in result["error"]["message"]
    assert snapshot(pg_dsn) == before
    assert "a" not in tables(pg_dsn)
