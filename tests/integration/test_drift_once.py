"""One schema snapshot per run (engine/snapshot_once.py): a run of many migrations stores it
once, with its last history write (batched or one at a time, migrate and rollback); a run that
stops part-way stores the snapshot of the state it left; a snapshot older than the history
(a run that crashed before it could store one) is never read as drift.

The snapshots a run stores are counted on the server: a trigger on the snapshot table counts
the rows each committed store writes (one per statement: the table has one row)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.faults.faultkit import SLEEP, env_without_patcher, set_sleep, sleeping_pid, wait_for
from tests.fixtures.engine import REPO, MigrationDir, Run, make_runner, query

pytestmark = pytest.mark.db

SNP = "schema_migrations_snp"
COUNTER = f"""
CREATE TABLE snap_count (n integer NOT NULL);
INSERT INTO snap_count VALUES (0);
CREATE FUNCTION count_snap() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN UPDATE public.snap_count SET n = n + 1; RETURN NULL; END$$;
CREATE TRIGGER count_snap AFTER INSERT OR UPDATE ON {SNP}
FOR EACH ROW EXECUTE FUNCTION count_snap();
"""
NO_TX = "-- patcher:no-transaction\n"


def stored(dsn: str) -> int:
    return int(query(dsn, "SELECT n FROM snap_count")[0][0])


def snapshot_version(dsn: str) -> Any:
    return query(dsn, f"SELECT version FROM {SNP}")[0][0]


def counted(pg_dsn: str, mdir: MigrationDir, run: Run) -> None:
    """Version 1 applied (the snapshot table made), then the counter installed."""
    mdir.pair("1", "t1", "CREATE TABLE t1 (id int);", "DROP TABLE t1;")
    assert run("migrate")["ok"]
    query(pg_dsn, COUNTER)
    assert stored(pg_dsn) == 0


@pytest.mark.parametrize("no_tx", [False, True], ids=["batched", "with-no-transaction-scripts"])
def test_a_run_of_many_migrations_stores_one_snapshot(
    pg_dsn: str, mdir: MigrationDir, run: Run, no_tx: bool
) -> None:
    counted(pg_dsn, mdir, run)
    for v in range(2, 42):
        head = NO_TX if no_tx and v in (20, 41) else ""
        mdir.pair(str(v), f"t{v}", f"{head}CREATE TABLE t{v} (id int);", f"DROP TABLE t{v};")
    result = run("migrate")
    assert result["ok"] and len(result["migrations"]) == 40
    assert stored(pg_dsn) == 1  # 40 history writes, one snapshot: the last one's
    assert snapshot_version(pg_dsn) == 41
    assert run("drift")["status"] == "in_sync"
    assert run("rollback", target=1)["ok"]  # 40 down scripts
    assert stored(pg_dsn) == 2
    assert snapshot_version(pg_dsn) == 1
    assert run("drift")["status"] == "in_sync"


@pytest.mark.parametrize("no_tx", [False, True], ids=["transactional", "no-transaction"])
def test_a_run_that_fails_at_its_third_of_five_leaves_the_snapshot_of_what_it_left(
    pg_dsn: str, mdir: MigrationDir, run: Run, no_tx: bool
) -> None:
    counted(pg_dsn, mdir, run)
    mdir.pair("2", "t2", "CREATE TABLE t2 (id int);")
    mdir.pair("3", "t3", "CREATE TABLE t3 (id int);")
    bad = f"{NO_TX if no_tx else ''}CREATE TABLE t4 (id int);\nSELECT 1/0;\n"
    mdir.pair("4", "bad", bad)  # the third of the run's five
    mdir.pair("5", "t5", "CREATE TABLE t5 (id int);")
    mdir.pair("6", "t6", "CREATE TABLE t6 (id int);")
    result = run("migrate")
    assert not result["ok"] and result["error"]["type"] == "MigrationFailed"
    assert stored(pg_dsn) == 1  # stored on its own, after the failure, under the lock
    # Transactional: version 3 is the last applied (t4 rolled back with its migration). A
    # no-transaction script leaves t4 and version 4 marked dirty: the snapshot holds both.
    assert snapshot_version(pg_dsn) == (4 if no_tx else 3)
    assert (query(pg_dsn, "SELECT to_regclass('t4')")[0][0] is not None) == no_tx
    drift = run("drift")
    assert drift["status"] == "in_sync", drift
    assert not result["warnings"] or "could not store" not in " ".join(result["warnings"])


def test_a_stale_snapshot_is_not_read_as_drift(pg_dsn: str, mdir: MigrationDir, run: Run) -> None:
    mdir.pair("1", "t1", "CREATE TABLE t1 (id int);")
    mdir.pair("2", "t2", "CREATE TABLE t2 (id int);")
    assert run("migrate")["ok"]
    saved = query(pg_dsn, f"SELECT version, objects, body FROM {SNP}")[0]
    mdir.pair("3", "t2_note", "ALTER TABLE t2 ADD COLUMN note text;")
    assert run("migrate")["ok"]
    # As a run that crashed (its process killed) after committing version 3 and before it could
    # store the snapshot of it leaves the database:
    query(pg_dsn, f"UPDATE {SNP} SET version = %s, objects = %s, body = %s", saved)
    drift = run("drift")
    assert drift["status"] == "invalid" and not drift["ok"], drift
    error = drift["error"]
    assert error["type"] == "MissingSnapshot"
    assert "snapshot is of version 2, the database is at version 3" in error["message"]
    assert "stores a fresh one" in error["message"]
    assert (error["snapshot_version"], error["current_version"]) == (2, 3)
    assert not drift.get("differences")  # not drift: maybe only the migration after it
    mdir.pair("4", "t4", "CREATE TABLE t4 (id int);")
    result = run("migrate")
    assert result["ok"]
    assert any("drift was not checked" in w for w in result["warnings"]), result["warnings"]
    assert not any("has drifted" in w for w in result["warnings"])
    assert snapshot_version(pg_dsn) == 4
    assert run("drift")["status"] == "in_sync"


def test_a_stale_snapshot_of_the_same_schema_is_in_sync_with_a_warning(
    pg_dsn: str, mdir: MigrationDir, run: Run
) -> None:
    mdir.pair("1", "t1", "CREATE TABLE t1 (id int);")
    mdir.pair("2", "fill", "INSERT INTO t1 VALUES (1);")  # data only: the schema is 1's
    assert run("migrate")["ok"]
    query(pg_dsn, f"UPDATE {SNP} SET version = 1")
    drift = run("drift")
    assert drift["status"] == "in_sync" and drift["ok"]
    assert any("snapshot is of version 1 but version 2" in w for w in drift["warnings"])


@pytest.mark.slow
def test_a_run_cut_by_the_deadline_stores_the_snapshot_of_what_it_committed(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    mdir.pair("1", "quick", "CREATE TABLE quick (id int);")
    mdir.pair("2", "slow", f"CREATE TABLE slow (id int);\n{SLEEP}\n")
    mdir.pair("3", "later", "CREATE TABLE later (id int);")
    set_sleep(pg_dsn, 60)
    run = make_runner(pg_dsn, mdir.path, time_margin_seconds=1)
    end = time.monotonic() + 4
    result = run("migrate", time_left_ms=lambda: int((end - time.monotonic()) * 1000))
    assert time.monotonic() < end  # the store still ends before the invocation's deadline
    assert (result["ok"], result["status"]) == (True, "partial"), result
    assert not any("could not store" in w for w in result["warnings"])
    assert snapshot_version(pg_dsn) == 1  # version 1 committed, 2 was cut and rolled back
    set_sleep(pg_dsn, 0)
    assert run("drift")["status"] == "in_sync"


def test_an_interrupted_cli_stores_the_snapshot_of_what_it_left(
    pg_dsn: str, mdir: MigrationDir
) -> None:
    """Ctrl-C in a statement run on its own (here a no-transaction script's): psycopg cancels
    it, and the snapshot is stored on the way out, under the lock. (In a batch message the
    session is left mid-message: no snapshot, drift then says the snapshot is stale.)"""
    mdir.pair("1", "quick", "CREATE TABLE quick (id int);")
    mdir.pair("2", "slow", f"{NO_TX}CREATE TABLE slow (id int);\n{SLEEP}\n")
    set_sleep(pg_dsn, 60)
    env = {
        **env_without_patcher(),
        "PATCHER_DATABASE_URL": pg_dsn,
        "PATCHER_SOURCE": str(mdir.path),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "patcher.cli", "migrate"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for("the run sleeping in version 2", lambda: sleeping_pid(pg_dsn), timeout=60)
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    set_sleep(pg_dsn, 0)
    rows = query(pg_dsn, "SELECT version, dirty FROM schema_migrations ORDER BY version")
    assert rows == [(1, False), (2, True)]
    assert snapshot_version(pg_dsn) == 2  # the dirty version's half-done schema (slow)
    assert make_runner(pg_dsn, mdir.path)("drift")["status"] == "in_sync"
