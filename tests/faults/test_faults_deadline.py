"""The Lambda deadline: a migration longer than the time left, a lock wait longer than it."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
import pytest

from tests.faults.faultkit import KEY, SLEEP, lock_is_free, set_sleep
from tests.fixtures.engine import MigrationDir, make_runner, query, tables


def lambda_clock(seconds: float) -> Callable[[], int]:
    """get_remaining_time_in_millis of an invocation with ``seconds`` left from now."""
    end = time.monotonic() + seconds
    return lambda: int((end - time.monotonic()) * 1000)


@pytest.mark.slow
@pytest.mark.parametrize("transactional", [True, False], ids=["transactional", "no-transaction"])
def test_a_migration_longer_than_the_time_left_is_cut_at_the_deadline(
    pg_dsn: str, mdir: MigrationDir, transactional: bool
) -> None:
    directive = "" if transactional else "-- patcher:no-transaction\n"
    mdir.pair("1", "quick", "CREATE TABLE quick (id int);")
    mdir.pair("2", "slow", f"{directive}CREATE TABLE slow (id int);\n{SLEEP}\n")
    mdir.pair("3", "later", "CREATE TABLE later (id int);")
    set_sleep(pg_dsn, 60)
    run = make_runner(pg_dsn, mdir.path, time_margin_seconds=1)
    started = time.monotonic()
    result = run("migrate", time_left_ms=lambda_clock(4))
    took = time.monotonic() - started
    assert took < 4, f"ran {took:.1f}s into a 4 s invocation"  # returned before the deadline
    assert [p["version"] for p in result["pending"]] == [2, 3]
    assert lock_is_free(pg_dsn)
    rows = query(pg_dsn, "SELECT version, dirty FROM schema_migrations ORDER BY version")
    if transactional:  # rolled back; version 1 ran in this invocation: partial, invoke again
        assert (result["ok"], result["status"], result["error"]) == (True, "partial", None)
        assert [m["state"] for m in result["migrations"]] == ["applied", "not_run", "not_run"]
        assert any("cut by the Lambda deadline" in w for w in result["warnings"])
        assert rows == [(1, False)] and "slow" not in tables(pg_dsn)
    else:  # the statement before the cut stays; the version says so, and so does the error
        assert result["status"] == "failed" and result["error"]["type"] == "DeadlineExceeded"
        assert result["error"]["sqlstate"] == "57014" and result["error"]["version"] == 2
        message = result["error"]["message"]
        assert "marked dirty" in message and "repair" in message
        assert [m["state"] for m in result["migrations"]] == ["applied", "failed", "not_run"]
        assert rows == [(1, False), (2, True)] and "slow" in tables(pg_dsn)


def test_no_migration_starts_when_the_time_left_is_within_the_margin(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    mdir.pair("2", "b", "CREATE TABLE b (id int);")
    run = make_runner(pg_dsn, mdir.path, time_margin_seconds=30)
    result = run("migrate", time_left_ms=lambda_clock(30.5))
    assert result["ok"] is True and result["status"] == "partial"
    assert [p["version"] for p in result["pending"]] == [1, 2]
    assert any("invoke again" in w for w in result["warnings"])
    assert "a" not in tables(pg_dsn)
    assert run("migrate")["status"] == "applied"  # the next invocation carries on


@pytest.mark.slow
def test_a_lock_wait_longer_than_the_time_left_ends_before_the_deadline(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    run = make_runner(pg_dsn, mdir.path, lock_wait_seconds=600, time_margin_seconds=1)
    with psycopg.connect(pg_dsn, autocommit=True, application_name="long-holder") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (KEY,))
        started = time.monotonic()
        result = run("migrate", time_left_ms=lambda_clock(3))
        took = time.monotonic() - started
        assert result["status"] == "locked" and result["error"]["type"] == "LockTimeout"
        assert result["error"]["holder_application_name"] == "long-holder"
        assert result["error"]["holder_pid"] == holder.info.backend_pid
        assert "Lambda time left" in result["error"]["message"]
        assert 1.5 < took < 3, f"waited {took:.1f}s with 3 s left and a 1 s margin"
    assert "a" not in tables(pg_dsn)
