"""Nothing twice (SPEC 7 item 5): a no-transaction ``CALL`` or ``DO`` that started is never
retried, since a procedure or DO block can COMMIT inside; a transactional migration still is
(the procedure cannot COMMIT inside its transaction, and the retry starts from a rollback).

The blocking session is event-driven: it holds row 3 until the runner's backend has waited
on it and that wait has ended (the attempt gave up on lock_timeout), then ends its own
transaction. A retry, if one were made, would then find the row free and go through.
"""

from __future__ import annotations

from typing import Any

import psycopg

from tests.faults.faultkit import in_background, lock_is_free, wait_for
from tests.fixtures.engine import MigrationDir, make_runner, query

ACCT = (
    "CREATE TABLE acct (id int PRIMARY KEY, bal int NOT NULL);\n"
    "INSERT INTO acct SELECT g, 100 FROM generate_series(1, 3) g;\n"
)
PROCEDURE = (
    "CREATE PROCEDURE add_interest() LANGUAGE plpgsql AS $$\nBEGIN\n"
    "  FOR i IN 1..3 LOOP\n    UPDATE acct SET bal = bal + 1 WHERE id = i;\n{commit}"
    "  END LOOP;\nEND $$;\n"
)
NO_TX = "-- patcher:no-transaction\n"


def _blocked(dsn: str, app: str, blocker: int) -> tuple[Any, ...] | None:
    """(pid, query_start) of the run's backend while it waits for a lock ``blocker`` holds."""
    rows = query(
        dsn,
        "SELECT pid, query_start FROM pg_stat_activity WHERE application_name = %s "
        "AND wait_event_type = 'Lock' AND %s = ANY (pg_blocking_pids(pid))",
        (app, blocker),
    )
    return rows[0] if rows else None


def _run_behind_row_lock(
    dsn: str, mdir: MigrationDir, request_id: str, **tuning: Any
) -> dict[str, Any]:
    """Run ``migrate`` while another session holds row 3 FOR UPDATE; that session lets go
    once the run's first attempt has waited for it and given up (lock_timeout 300 ms)."""
    run = make_runner(dsn, mdir.path, lock_timeout="300ms")
    app = f"stackflowpatcher:{request_id}"
    with psycopg.connect(dsn) as blocker:  # not autocommit: the row lock stays held
        blocker.execute("SELECT * FROM acct WHERE id = 3 FOR UPDATE").fetchall()
        pid = blocker.info.backend_pid
        future = in_background(lambda: run("migrate", request_id=request_id, tuning=tuning))
        waiting = wait_for("the run to wait for row 3", lambda: _blocked(dsn, app, pid))
        # Its first attempt gave up: no longer waiting, or waiting in a later statement.
        wait_for(
            "the first attempt to hit lock_timeout",
            lambda: (_blocked(dsn, app, pid) or (None, None))[1] != waiting[1],
        )
        blocker.rollback()  # the hold ends by the blocker's own action
        return future.result(timeout=60)


def test_a_no_transaction_call_that_committed_inside_is_not_retried(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    mdir.pair("1", "acct", ACCT + PROCEDURE.format(commit="    COMMIT;\n"))
    mdir.write("2_interest.up.sql", NO_TX + "SELECT 1;\nCALL add_interest();\n")
    assert make_runner(pg_dsn, mdir.path)("migrate", target=1)["status"] == "applied"

    result = _run_behind_row_lock(pg_dsn, mdir, "call-run", lock_retries=3)

    # Rows 1 and 2 were committed once by the one attempt; a retry would have made them 102.
    assert query(pg_dsn, "SELECT id, bal FROM acct ORDER BY id") == [(1, 101), (2, 101), (3, 100)]
    assert result["status"] == "failed", result
    error = result["error"]
    assert (error["type"], error["sqlstate"], error["statement"]) == ("MigrationFailed", "55P03", 2)
    message = error["message"]
    assert "(statement 2): canceling statement due to lock timeout" in message
    assert "CALL add_interest()" in message  # names the statement
    assert "was not retried" in message and "may have committed" in message
    assert "every retry" not in message
    assert "make it safe to run again" in message and "run repair" in message
    assert "the next migrate re-runs the whole up script" in message
    assert query(pg_dsn, "SELECT version, dirty, dirty_direction FROM schema_migrations "
                 "ORDER BY version") == [(1, False, None), (2, True, "up")]  # fmt: skip
    log = query(pg_dsn, "SELECT outcome FROM schema_migrations_log WHERE version = 2 ORDER BY id")
    assert log == [("started",), ("failed",)]
    assert lock_is_free(pg_dsn)


def test_a_no_transaction_do_block_is_not_retried_either(pg_dsn: str, mdir: MigrationDir) -> None:
    mdir.pair("1", "acct", ACCT)
    body = "DO $$\nBEGIN\n  FOR i IN 1..3 LOOP\n    UPDATE acct SET bal = bal + 1 WHERE id = i;\n"
    mdir.write("2_interest.up.sql", NO_TX + body + "    COMMIT;\n  END LOOP;\nEND $$;\n")
    assert make_runner(pg_dsn, mdir.path)("migrate", target=1)["status"] == "applied"

    result = _run_behind_row_lock(pg_dsn, mdir, "do-run", lock_retries=3)

    assert query(pg_dsn, "SELECT id, bal FROM acct ORDER BY id") == [(1, 101), (2, 101), (3, 100)]
    assert result["status"] == "failed", result
    message = result["error"]["message"]
    assert "(statement 1): canceling statement due to lock timeout" in message
    assert "DO $$" in message and "was not retried" in message
    assert query(pg_dsn, "SELECT version FROM schema_migrations WHERE dirty") == [(2,)]


def test_a_transactional_call_is_retried_from_a_rollback(pg_dsn: str, mdir: MigrationDir) -> None:
    """Inside the migration's transaction the procedure's work goes with the rollback, so the
    retry of the whole migration is safe: each row gains exactly 1."""
    mdir.pair("1", "acct", ACCT + PROCEDURE.format(commit=""))
    mdir.write("2_interest.up.sql", "CALL add_interest();\n")
    assert make_runner(pg_dsn, mdir.path)("migrate", target=1)["status"] == "applied"

    result = _run_behind_row_lock(pg_dsn, mdir, "tx-run", lock_retries=3)

    assert result["status"] == "applied", result
    assert query(pg_dsn, "SELECT id, bal FROM acct ORDER BY id") == [(1, 101), (2, 101), (3, 101)]
    log = query(pg_dsn, "SELECT outcome FROM schema_migrations_log WHERE version = 2")
    assert log == [("applied",)]


def test_a_procedure_cannot_commit_inside_a_transactional_migration(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    """What PostgreSQL does with a COMMIT inside a CALL in a transaction block: refuses it
    (2D000) and the whole migration rolls back, the procedure's first row included."""
    mdir.pair("1", "acct", ACCT + PROCEDURE.format(commit="    COMMIT;\n"))
    mdir.write("2_interest.up.sql", "CALL add_interest();\n")
    run = make_runner(pg_dsn, mdir.path)
    assert run("migrate", target=1)["status"] == "applied"

    result = run("migrate")

    assert result["status"] == "failed"
    assert result["error"]["sqlstate"] == "2D000"  # invalid transaction termination
    assert "nothing of it remains" in result["error"]["message"]
    assert query(pg_dsn, "SELECT id, bal FROM acct ORDER BY id") == [(1, 100), (2, 100), (3, 100)]
    assert query(pg_dsn, "SELECT version, dirty FROM schema_migrations") == [(1, False)]
