"""Contention: many runs at once around a CREATE INDEX CONCURRENTLY, a long-held lock, and a
migration whose ALTER TABLE queues behind another session's open transaction."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from tests.faults.faultkit import (
    SLEEP,
    in_background,
    lock_is_free,
    set_sleep,
    sleeping_pid,
    wait_for,
)
from tests.fixtures.engine import MigrationDir, make_runner, query

# Each start of the migration's ALTER TABLE, counted by the server before the ALTER asks for
# its lock and kept when its transaction rolls back (a sequence is not transactional): the
# runner's attempts, exactly, however late a sampler would have looked.
ATTEMPT_COUNTER = """
CREATE SEQUENCE alter_attempts;
CREATE FUNCTION count_alter() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    IF strpos(current_query(), 'ALTER TABLE t ADD COLUMN note') > 0 THEN
        PERFORM nextval('alter_attempts');
    END IF;
END $$;
CREATE EVENT TRIGGER count_alter ON ddl_command_start WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION count_alter();
"""


class Sampler:
    """Runs a query every few milliseconds on its own session until stopped."""

    def __init__(self, dsn: str, sql: str) -> None:
        self.samples: list[Any] = []
        self._stop = threading.Event()
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._sql = sql
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.extend(self._conn.execute(self._sql).fetchall())
            time.sleep(0.005)

    def stop(self) -> list[Any]:
        self._stop.set()
        self._thread.join(timeout=10)
        self._conn.close()
        return self.samples


@pytest.mark.slow
def test_sixteen_concurrent_runs_around_create_index_concurrently(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    for i in range(1, 11):
        mdir.pair(f"{i:03d}", f"t{i}", f"CREATE TABLE t{i} (id int);\nSELECT pg_sleep(0.02);\n")
    query(pg_dsn, "CREATE TABLE big AS SELECT g AS id FROM generate_series(1, 200000) g")
    mdir.write("011_idx.up.sql", "-- patcher:no-transaction\n"
               "CREATE INDEX CONCURRENTLY big_id ON big (id);\n")  # fmt: skip
    for i in range(12, 21):
        mdir.pair(f"{i:03d}", f"t{i}", f"CREATE TABLE t{i} (id int);")
    blocked_waiters = Sampler(  # a waiter blocked inside pg_advisory_lock would show here
        pg_dsn,
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
    )
    run = make_runner(pg_dsn, mdir.path, lock_wait_seconds=60)
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: run("migrate", request_id=f"r{i}"), range(16)))
    took = time.monotonic() - started
    assert blocked_waiters.stop() == []
    assert all(r["ok"] for r in results), [r["error"] for r in results if not r["ok"]]
    applied = sorted(m["version"] for r in results for m in r["migrations"])
    assert applied == list(range(1, 21))  # every version exactly once, across all runs
    assert query(
        pg_dsn,
        "SELECT version, count(*) FROM schema_migrations_log WHERE outcome = 'applied' "
        "GROUP BY version ORDER BY version",
    ) == [(v, 1) for v in range(1, 21)]
    valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_id'::regclass"
    assert query(pg_dsn, valid) == [(True,)]
    assert took < 30
    assert lock_is_free(pg_dsn)


def test_a_run_behind_a_long_held_lock_returns_locked_naming_the_holder(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    mdir.pair("1", "long", f"CREATE TABLE long (id int);\n{SLEEP}\n")
    set_sleep(pg_dsn, 60)
    holder_run = make_runner(pg_dsn, mdir.path)
    future = in_background(lambda: holder_run("migrate", request_id="the-long-one"))
    pid = wait_for("the long migration", lambda: sleeping_pid(pg_dsn))
    waiter = make_runner(pg_dsn, mdir.path, lock_wait_seconds=1)
    started = time.monotonic()
    result = waiter("migrate", request_id="the-waiter")
    assert 1 <= time.monotonic() - started < 3
    assert result["ok"] is False and result["status"] == "locked"
    error = result["error"]
    assert error["type"] == "LockTimeout" and error["holder_pid"] == pid
    assert error["holder_application_name"] == "stackflowpatcher:the-long-one"
    assert error["holder_since"]
    assert f"SELECT pg_terminate_backend({pid})" in error["message"]
    query(pg_dsn, "SELECT pg_terminate_backend(%s)", (pid,))
    assert future.result(timeout=20)["status"] == "failed"


@pytest.mark.slow
def test_alter_behind_an_open_transaction_never_queues_readers_past_lock_timeout(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    """A: an open transaction reading t. Runner: ALTER TABLE t queues behind A. C: plain
    reads of t, which queue behind the ALTER: each must wait at most lock_timeout."""
    query(pg_dsn, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
    query(pg_dsn, ATTEMPT_COUNTER)
    mdir.pair("1", "alter", "ALTER TABLE t ADD COLUMN note text;")
    lock_timeout_ms, backoff_s = 300, 0.2
    run = make_runner(pg_dsn, mdir.path, lock_timeout=f"{lock_timeout_ms}ms")
    a = psycopg.connect(pg_dsn)  # not autocommit: the transaction stays open
    a.execute("SELECT count(*) FROM t").fetchone()
    latencies: list[float] = []
    done = threading.Event()

    def reader() -> None:  # each read's wait as the server measured it (lock wait included)
        with psycopg.connect(pg_dsn, autocommit=True) as c:
            while not done.is_set():
                row = c.execute(
                    "SELECT extract(epoch FROM clock_timestamp() - now())::float8, count(*) FROM t"
                ).fetchone()
                latencies.append(row[0] if row else 0.0)
                time.sleep(0.01)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    tuning = {"lock_retries": 3, "lock_retry_backoff_seconds": backoff_s}
    started = time.monotonic()
    result = run("migrate", request_id="alter-run", tuning=tuning)
    took = time.monotonic() - started
    done.set()
    thread.join(timeout=10)
    attempts = query(pg_dsn, "SELECT last_value FROM alter_attempts WHERE is_called")
    a.rollback()
    a.close()

    assert result["status"] == "failed" and result["error"]["sqlstate"] == "55P03"
    assert (
        "lock_timeout" in result["error"]["message"] and "every retry" in result["error"]["message"]
    )
    assert attempts == [(4,)], f"expected 1 attempt + 3 retries, the server saw {attempts}"
    assert took >= 4 * lock_timeout_ms / 1000 + backoff_s * (1 + 2 + 4) - 0.1
    worst = max(latencies)
    print(f"{len(latencies)} reads, worst {worst * 1000:.0f} ms (server), {took:.1f}s")
    # The server's own clock: no client scheduling in it, only the wait behind the ALTER.
    assert worst < lock_timeout_ms / 1000 + 0.25, f"a reader waited {worst * 1000:.0f} ms"
    assert sum(1 for x in latencies if x > 0.1) >= 3  # readers really did queue behind it
    assert query(pg_dsn, "SELECT count(*) FROM information_schema.columns "
                 "WHERE table_name = 't' AND column_name = 'note'") == [(0,)]  # fmt: skip
    assert query(pg_dsn, "SELECT count(*) FROM schema_migrations") == [(0,)]
    assert query(pg_dsn, "SELECT version, outcome FROM schema_migrations_log") == [(1, "failed")]
    assert lock_is_free(pg_dsn)
    assert run("migrate")["status"] == "applied"  # A is gone: the same run now goes through
