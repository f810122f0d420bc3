"""Connection lost mid-migration, and a CLI run killed with SIGKILL.

The long statement is ``SELECT pg_sleep(faults.sleep)``: the sleep comes from a database
setting, so a test can make the first run hang and the next one finish with the same file.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.faults.faultkit import (
    SLEEP,
    env_without_patcher,
    in_background,
    lock_is_free,
    set_sleep,
    sleeping_pid,
    wait_for,
)
from tests.fixtures.engine import REPO, MigrationDir, make_runner, query, tables


def test_terminated_transactional_migration_leaves_no_trace(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    mdir.pair("1", "base", "CREATE TABLE base (id int);")
    mdir.pair("2", "slow", f"CREATE TABLE half (id int);\nINSERT INTO half VALUES (1);\n{SLEEP}\n"
              "CREATE TABLE after_sleep (id int);\n")  # fmt: skip
    run = make_runner(pg_dsn, mdir.path)
    set_sleep(pg_dsn, 60)
    future = in_background(lambda: run("migrate", request_id="victim"))
    pid = wait_for("the migration to sleep", lambda: sleeping_pid(pg_dsn))
    started = time.monotonic()
    query(pg_dsn, "SELECT pg_terminate_backend(%s)", (pid,))
    result = future.result(timeout=20)
    assert time.monotonic() - started < 5
    assert result["ok"] is False and result["status"] == "failed"
    error = result["error"]
    assert error["type"] == "MigrationFailed" and error["version"] == 2
    assert "connection was lost" in error["message"] and "nothing of it remains" in error["message"]
    assert [m["state"] for m in result["migrations"]] == ["applied", "failed"]
    assert tables(pg_dsn) == {
        "base",
        "schema_migrations",
        "schema_migrations_log",
        "schema_migrations_snp",
    }
    assert query(pg_dsn, "SELECT version, dirty FROM schema_migrations") == [(1, False)]
    assert lock_is_free(pg_dsn)
    log = query(pg_dsn, "SELECT version, outcome, request_id, error FROM schema_migrations_log "
                "ORDER BY id")  # fmt: skip
    assert [row[:3] for row in log] == [(1, "applied", "victim"), (2, "failed", "victim")]
    assert "connection was lost" in log[1][3]  # written on a new session after the loss
    set_sleep(pg_dsn, 0)
    again = run("migrate")
    assert again["status"] == "applied" and again["current_version"] == 2
    assert {"half", "after_sleep"} <= tables(pg_dsn)
    assert query(pg_dsn, "SELECT count(*) FROM half") == [(1,)]  # once, not twice


def test_terminated_no_transaction_migration_is_dirty_until_repaired(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    mdir.pair("1", "base", "CREATE TABLE base (id int);")
    mdir.pair("2", "idx", "-- patcher:no-transaction\nCREATE TABLE big (id int);\n"
              f"{SLEEP}\nCREATE INDEX CONCURRENTLY big_id ON big (id);\n")  # fmt: skip
    run = make_runner(pg_dsn, mdir.path)
    set_sleep(pg_dsn, 60)
    future = in_background(lambda: run("migrate", request_id="victim"))
    pid = wait_for("the migration to sleep", lambda: sleeping_pid(pg_dsn))
    query(pg_dsn, "SELECT pg_terminate_backend(%s)", (pid,))
    result = future.result(timeout=20)
    assert result["status"] == "failed" and result["error"]["version"] == 2
    assert "marked dirty" in result["error"]["message"] and "repair" in result["error"]["message"]
    assert query(pg_dsn, "SELECT version, dirty, dirty_direction FROM schema_migrations "
                 "ORDER BY version") == [(1, False, None), (2, True, "up")]  # fmt: skip
    assert "big" in tables(pg_dsn)  # a no-transaction script keeps what it did
    assert lock_is_free(pg_dsn)
    log = query(pg_dsn, "SELECT version, outcome FROM schema_migrations_log ORDER BY id")
    assert log == [(1, "applied"), (2, "started"), (2, "failed")]

    set_sleep(pg_dsn, 0)
    blocked = run("migrate")
    assert blocked["status"] == "invalid" and blocked["error"]["type"] == "DirtyDatabase"
    message = blocked["error"]["message"]
    assert "version 2 (idx)" in message
    assert (  # the payload's words: this is the Lambda's result (the CLI's: test_cli_words)
        'then run repair: {"action": "repair", "dry_run": true} to see what it will do, then '
        '{"action": "repair"}' in message
    )
    assert query(pg_dsn, "SELECT version, dirty FROM schema_migrations ORDER BY version") == [
        (1, False), (2, True)]  # fmt: skip

    query(pg_dsn, "DROP TABLE big")  # the human step the message asks for
    preview = run("repair", dry_run=True)
    assert preview["status"] == "planned" and preview["migrations"][0]["version"] == 2
    assert run("repair")["status"] == "applied"
    final = run("migrate")
    assert final["status"] == "applied" and final["current_version"] == 2
    assert query(pg_dsn, "SELECT indexname FROM pg_indexes WHERE indexname = 'big_id'") == [
        ("big_id",)]  # fmt: skip


@pytest.mark.slow
def test_sigkilled_cli_run_frees_the_lock_within_seconds(pg_dsn: str, mdir: MigrationDir) -> None:
    """A killed client's backend must notice during a long statement, not when it ends.

    PG 14+ only (client_connection_check_interval): before 14 nothing checks the client during
    a statement, so the lock goes when the statement ends; shown here with a 6 s statement."""
    watched = query(pg_dsn, "SELECT current_setting('server_version_num')::int")[0][0] >= 140000
    statement_seconds = 60 if watched else 6
    mdir.pair("1", "slow", f"CREATE TABLE t (id int);\n{SLEEP}\n")
    set_sleep(pg_dsn, statement_seconds)
    env = env_without_patcher()
    proc = subprocess.Popen(
        [sys.executable, "-m", "patcher.cli", "migrate", "--source", str(mdir.path),
         "--database-url", pg_dsn],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        pid = wait_for("the CLI migration to sleep", lambda: sleeping_pid(pg_dsn), timeout=30)
        assert not lock_is_free(pg_dsn)
        killed = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    set_sleep(pg_dsn, 0)
    run = make_runner(pg_dsn, mdir.path, lock_wait_seconds=20)
    result = run("migrate", request_id="after-kill")
    waited = time.monotonic() - killed
    print(f"lock taken over {waited:.2f}s after SIGKILL")
    # PG 14+: the backend notices the dead client mid-statement and rolls back; the next run
    # applies. PG 13: nothing checks the client during a statement, and the script travelled
    # in one message with its history change and COMMIT, so the backend finishes it: the
    # migration committed with its history row, and the next run finds it applied.
    assert result["status"] == ("applied" if watched else "up_to_date"), result["error"]
    if watched:
        assert waited < 5, f"the killed run's backend held the lock for {waited:.1f}s"
    else:  # PG 13: held until the statement's end, then freed
        assert waited < statement_seconds + 5, f"the lock outlived the statement: {waited:.1f}s"
    assert query(pg_dsn, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)) == [(0,)]
    assert query(pg_dsn, "SELECT version, dirty FROM schema_migrations") == [(1, False)]
    assert b"Traceback" not in err, err
