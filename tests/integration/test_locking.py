"""One run at a time: concurrent runs apply every version once; a long wait ends as ``locked``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg

from patcher.db import lock_key
from tests.fixtures.engine import MigrationDir, make_runner, query


def test_eight_concurrent_migrate_runs_apply_every_version_once(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    for i in range(1, 16):
        mdir.pair(f"{i:04d}", f"t{i}", f"CREATE TABLE t{i} (id int);\nSELECT pg_sleep(0.01);\n")
    # A CREATE INDEX CONCURRENTLY among them: it waits for every open transaction, so waiters
    # blocked inside pg_advisory_lock() would deadlock it; polling waiters must not.
    mdir.write(
        "0016_idx.up.sql",
        "-- patcher:no-transaction\nCREATE INDEX CONCURRENTLY t1_id ON t1 (id);\n",
    )
    run = make_runner(pg_dsn, mdir.path, lock_wait_seconds=60)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: run("migrate", request_id=f"runner-{i}"), range(8)))
    assert all(r["ok"] for r in results), [r["error"] for r in results]
    assert sorted(r["status"] for r in results).count("up_to_date") >= 1
    applied = [m["version"] for r in results for m in r["migrations"]]
    assert sorted(applied) == list(range(1, 17))
    per_version = query(
        pg_dsn,
        "SELECT version, count(*) FROM schema_migrations_log WHERE outcome = 'applied' "
        "GROUP BY version ORDER BY version",
    )
    assert per_version == [(v, 1) for v in range(1, 17)]
    assert all(r["current_version"] == 16 for r in results)


def test_a_run_that_cannot_get_the_lock_reports_the_holder(pg_dsn: str, mdir: MigrationDir) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    run = make_runner(pg_dsn, mdir.path, lock_wait_seconds=0.3)
    key = lock_key("public", "schema_migrations")
    with psycopg.connect(pg_dsn, autocommit=True, application_name="holder-app") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        pid = holder.info.backend_pid
        result = run("migrate")
        assert result["ok"] is False and result["status"] == "locked"
        error = result["error"]
        assert error["type"] == "LockTimeout"
        assert error["holder_pid"] == pid and error["holder_application_name"] == "holder-app"
        assert f"pid {pid} (holder-app" in error["message"]
        assert query(pg_dsn, "SELECT to_regclass('schema_migrations')") == [(None,)]
    assert run("migrate")["status"] == "applied"  # the lock died with its session


def test_the_lock_is_released_after_a_failed_run(pg_dsn: str, mdir: MigrationDir) -> None:
    mdir.pair("1", "bad", "SELECT no_such_function();")
    run = make_runner(pg_dsn, mdir.path)
    assert run("migrate")["status"] == "failed"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        key = lock_key("public", "schema_migrations")
        assert conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() == (True,)


def test_sessions_carry_the_tool_and_request_id(pg_dsn: str, mdir: MigrationDir) -> None:
    mdir.pair("1", "who", "CREATE TABLE who AS SELECT current_setting('application_name') AS n;")
    make_runner(pg_dsn, mdir.path)("migrate", request_id="req-42")
    assert query(pg_dsn, "SELECT n FROM who") == [("stackflowpatcher:req-42",)]
    log = query(pg_dsn, "SELECT request_id, invoked_by FROM schema_migrations_log")
    assert log == [("req-42", "pytest")]


def test_status_and_dry_runs_do_not_wait_for_the_lock(pg_dsn: str, mdir: MigrationDir) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    run = make_runner(pg_dsn, mdir.path, lock_wait_seconds=0.2)
    run("migrate")
    with psycopg.connect(pg_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("public", "schema_migrations"),))
        assert run("status")["status"] == "up_to_date"
        assert run("migrate", dry_run=True)["status"] == "up_to_date"
        assert run("rollback", dry_run=True)["status"] == "planned"
        assert run("rollback", dry_run=True, verify=True)["status"] == "locked"


def test_a_waiting_migrate_stops_waiting_once_everything_is_applied(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    run = make_runner(pg_dsn, mdir.path, lock_wait_seconds=2)
    run("migrate")
    mdir.pair("2", "b", "CREATE TABLE b (id int);")
    with psycopg.connect(pg_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("public", "schema_migrations"),))
        # Version 2 is pending: a waiter must wait the full lock wait, then report `locked`.
        assert run("migrate")["status"] == "locked"
        # The holder applies it (as another run would), still holding the lock.
        holder.execute("CREATE TABLE b (id int)")
        holder.execute(
            "INSERT INTO schema_migrations (version, description, checksum) "
            "SELECT 2, 'b', encode(sha256(%s::bytea), 'hex')",
            ((mdir.path / "2_b.up.sql").read_bytes(),),
        )
        result = run("migrate")
        # The holder still holds the lock: a waiter that sat out its wait would say `locked`.
        assert result["status"] == "up_to_date" and result["ok"], result["error"]
        assert result["current_version"] == 2


def test_the_end_of_a_run_frees_every_level_before_it_tells_the_waiters(pg_dsn: str) -> None:
    """The run's per-migration lock check stacks levels of the session lock; the notice that
    wakes the waiters must leave only once the lock is free, not one level later."""
    from patcher.db import advisory_lock

    key = lock_key("public", "schema_migrations")
    with psycopg.connect(pg_dsn, autocommit=True) as holder:
        for _ in range(3):  # taken, then two cheap checks
            assert advisory_lock.try_lock(holder, key)
        advisory_lock.release(holder, key)
        assert advisory_lock.holds_lock(holder, key) is False
        with psycopg.connect(pg_dsn, autocommit=True) as other:
            assert advisory_lock.try_lock(other, key)  # free while the holder is connected
