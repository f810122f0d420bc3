"""SPEC section 8, one database: the state machine's invoke loop through moto's interpreter
with the real handler (partial, locked, failed, no progress) and the long-run container path."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from botocore.exceptions import ClientError

from patcher.db.advisory_lock import lock_key
from patcher.dev.devrun import LambdaContext
from tests.e2e.sfnkit import RESULTS_PREFIX, Aws, refuse_failed_puts, sfn_world
from tests.fixtures.engine import history, tables

# Each scenario runs whole executions (seconds to a minute): CI runs them, test-fast does not.
pytestmark = pytest.mark.slow


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, pg_dsn: str) -> Iterator[Aws]:
    world = sfn_world(monkeypatch, s3_endpoint)
    aws = next(world)
    monkeypatch.setenv("PATCHER_DATABASE_URL", pg_dsn)
    yield aws
    next(world, None)


def sleepy(version: int, seconds: float) -> tuple[str, str]:
    return (
        f"{version:04d}_t{version}.up.sql",
        f"CREATE TABLE t{version} (id int);\nSELECT pg_sleep({seconds});\n",
    )


class WorkClock(LambdaContext):
    """A Lambda context whose clock moves with the work, not with the machine: ``start_ms``
    left when the invocation starts, ``per_migration_ms`` less for each migration the history
    gained since. However slow the machine, the same migrations fit in each invocation."""

    def __init__(self, dsn: str, start_ms: int, per_migration_ms: int) -> None:
        super().__init__(start_ms)
        self.dsn, self.start_ms, self.per_migration_ms = dsn, start_ms, per_migration_ms
        self.base = self.applied()

    def applied(self) -> int:
        try:
            return len(history(self.dsn))
        except psycopg.errors.UndefinedTable:
            return 0  # the first invocation has not made the history yet

    def get_remaining_time_in_millis(self) -> int:
        return self.start_ms - self.per_migration_ms * (self.applied() - self.base)


def test_a_run_needing_three_invocations_succeeds(aws: Aws, pg_dsn: str) -> None:
    """3.5 s of usable time an invocation (margin 30 s), and each migration takes 2 s of it
    (``WorkClock``): two start in each (the second with 1.5 s left, the third would with
    -0.5 s), so five need 2 + 2 + 1. The scripts are no-transaction ones, so each is started
    alone, after the engine's own check of the clock (a batch would start its later ones by
    the server's real clock)."""
    for v in range(1, 6):
        aws.put(f"{v:04d}_t{v}.up.sql", f"-- patcher:no-transaction\nCREATE TABLE t{v} (id int);\n")
    aws.context = lambda: WorkClock(pg_dsn, 33_500, 2_000)
    execution = aws.state_machine().run({"action": "migrate"})
    assert execution.status == "SUCCEEDED", execution.cause
    assert (execution.output["status"], execution.output["current_version"]) == ("applied", 5)
    assert [r["status"] for r in aws.results] == ["partial", "partial", "applied"]
    assert all(p["action"] == "migrate" and p["dry_run"] is False for p in aws.invocations)
    assert history(pg_dsn) == [(v, False) for v in range(1, 6)]
    assert {f"t{v}" for v in range(1, 6)} <= tables(pg_dsn)
    assert aws.tasks == []


def test_a_locked_database_that_frees_up(aws: Aws, pg_dsn: str) -> None:
    aws.put("0001_a.up.sql", "CREATE TABLE a (id int);\n")
    holder = psycopg.connect(pg_dsn, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("public", "schema_migrations"),))

    def release_after_the_first_refusal() -> None:  # the other run ends; its session lock goes
        while not aws.results:
            time.sleep(0.05)
        holder.close()

    release = threading.Thread(target=release_after_the_first_refusal, daemon=True)
    release.start()
    try:
        execution = aws.state_machine().run({"action": "migrate", "lock_backoff_seconds": 1})
    finally:
        holder.close()
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["status"] == "applied"
    assert [r["status"] for r in aws.results] == ["locked", "applied"]
    assert history(pg_dsn) == [(1, False)]


def test_a_database_locked_too_long_fails_as_locked(aws: Aws, pg_dsn: str) -> None:
    aws.put("0001_a.up.sql", "CREATE TABLE a (id int);\n")
    with psycopg.connect(pg_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("public", "schema_migrations"),))
        execution = aws.state_machine().run(
            {"action": "migrate", "lock_backoff_seconds": 1, "max_lock_retries": 2}
        )
    assert (execution.status, execution.error) == ("FAILED", "LockTimeout")
    assert "lock" in (execution.cause or "")
    assert len(aws.invocations) == 3  # the first try and two retries
    stored = aws.failed_result(execution.name, None)
    assert (stored["status"], stored["result"]) == ("locked", aws.results[-1])
    assert "a" not in tables(pg_dsn)


def test_a_failed_migration_fails_with_its_type_and_message(aws: Aws, pg_dsn: str) -> None:
    aws.put("0001_ok.up.sql", "CREATE TABLE ok (id int);\n")
    aws.put("0002_bad.up.sql", "CREATE TABLE bad (id int);\nSELECT 1/0;\n")
    execution = aws.state_machine().run({"action": "migrate"})
    assert (execution.status, execution.error) == ("FAILED", "MigrationFailed")
    assert "version 2 up failed" in (execution.cause or "")
    assert history(pg_dsn) == [(1, False)] and "bad" not in tables(pg_dsn)
    assert len(aws.invocations) == 1
    (returned,) = aws.results
    stored = aws.failed_result(execution.name, None)  # the whole result, before the child failed
    assert stored["result"] == returned
    assert (stored["ok"], stored["status"], stored["invocations"]) == (False, "failed", 1)
    assert stored["error"] == {"type": "MigrationFailed", "message": returned["error"]["message"]}
    error = stored["result"]["error"]
    assert (error["version"], error["file"], error["line"]) == (2, "0002_bad.up.sql", 2)
    assert error["column"] == returned["error"]["column"] and error["column"] >= 1
    assert stored["result"]["current_version"] == 1
    assert 1 in [m["version"] for m in stored["result"]["migrations"]]  # applied before it
    key = f"{RESULTS_PREFIX}{execution.name}/failed/default.json"
    assert stored["result_key"] == key
    record = aws.wave_records(execution.name, "single")["default"]
    assert json.loads(record["Cause"]) == {
        "database": None, "status": "failed", "type": "MigrationFailed",
        "message": returned["error"]["message"], "result_key": key,
    }  # fmt: skip


@pytest.mark.parametrize(("refusals", "stored"), [(1, True), (None, False)])
def test_a_failed_targets_result_write_is_retried_and_never_hides_its_error(
    aws: Aws, pg_dsn: str, monkeypatch: pytest.MonkeyPatch, refusals: int | None, stored: bool
) -> None:
    """S3 throttles the failed result's PUT once (retried: stored) or always (1 + 3 tries: the
    child still fails with MigrationFailed and its message; the Cause says why nothing is
    stored)."""
    refused = refuse_failed_puts(monkeypatch, refusals)
    aws.put("0001_bad.up.sql", "SELECT 1/0;\n")
    execution = aws.state_machine().run({"action": "migrate"})
    assert (execution.status, execution.error) == ("FAILED", "MigrationFailed")
    (returned,) = aws.results
    assert execution.cause == returned["error"]["message"]
    assert len(refused) == (1 if stored else 4)
    cause = json.loads(aws.wave_records(execution.name, "single")["default"]["Cause"])
    assert (cause["type"], cause["message"]) == ("MigrationFailed", returned["error"]["message"])
    if stored:
        assert aws.failed_result(execution.name, None)["result"] == returned
        assert cause["result_key"] == refused[0] and "not_written" not in cause
    else:
        with pytest.raises(ClientError, match="NoSuchKey"):
            aws.failed_result(execution.name, None)
        assert cause["result_key"] is None
        assert cause["not_written"].startswith("S3.S3Exception: Please reduce your request rate.")


def test_no_progress_fails_the_execution(aws: Aws, pg_dsn: str) -> None:
    """30.5 s left and a 30 s margin: no migration may start, invocation after invocation."""
    aws.put("0001_a.up.sql", "CREATE TABLE a (id int);\n")
    aws.context = lambda: LambdaContext(30_500)
    execution = aws.state_machine().run({"action": "migrate"})
    assert (execution.status, execution.error) == ("FAILED", "NoProgress")
    assert "stopped before version 1" in (execution.cause or "")
    assert len(aws.invocations) == 2
    assert "a" not in tables(pg_dsn)


def test_a_migration_longer_than_an_invocation_takes_the_long_run_path(
    aws: Aws, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5 s invocations (margin 1 s, safety 3 s): version 2 (4 s) is cut once behind version 1
    (partial), then alone (DeadlineExceeded); the container applies it; the loop resumes."""
    monkeypatch.setenv("PATCHER_TIME_MARGIN_SECONDS", "1")
    aws.put("0001_fast.up.sql", "CREATE TABLE fast (id int);\n")
    aws.put(*sleepy(2, 4.0))
    aws.put("0003_after.up.sql", "CREATE TABLE after_long (id int);\n")
    aws.context = lambda: LambdaContext(5_000)
    execution = aws.state_machine().run({"action": "migrate"})
    assert execution.status == "SUCCEEDED", execution.cause
    assert aws.tasks == [["migrate", "--target", "2", "--json"]]
    assert (execution.output["status"], execution.output["current_version"]) == ("applied", 3)
    assert [m["version"] for m in execution.output["migrations"]] == [3]
    assert history(pg_dsn) == [(1, False), (2, False), (3, False)]
    assert {"fast", "t2", "after_long"} <= tables(pg_dsn)


def test_run_state_machine_follows_the_execution_and_reports(
    aws: Aws, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from patcher.cli.main import build_parser
    from patcher.cli.run_state_machine import run_state_machine

    aws.put("0001_a.up.sql", "CREATE TABLE a (id int);\n")
    aws.put("0002_b.up.sql", "CREATE TABLE b (id int);\nSELECT 1/0;\n")
    machine = aws.state_machine()
    argv = ["run-state-machine", "migrate", "--state-machine-arn", machine.arn, "--wait"]
    assert run_state_machine(build_parser().parse_args([*argv, "--target", "1"])) == 0
    assert "applied" in capsys.readouterr().out and history(pg_dsn) == [(1, False)]
    assert run_state_machine(build_parser().parse_args([*argv, "--json"])) == 1
    out = capsys.readouterr().out.splitlines()  # the handler's log lines come first
    printed = json.loads("\n".join(out[len(out) - out[::-1].index("{") - 1 :]))
    assert (printed["status"], printed["error"]) == ("FAILED", "MigrationFailed")
    assert [p["target"] for p in aws.invocations] == [1, None]


class RangeClock(LambdaContext):
    """Like ``WorkClock``, for a backfill: ``per_range_ms`` less for each range committed."""

    def __init__(self, dsn: str, start_ms: int, per_range_ms: int) -> None:
        super().__init__(start_ms)
        self.dsn, self.start_ms, self.per_range_ms = dsn, start_ms, per_range_ms
        self.base = self.ranges()

    def ranges(self) -> int:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            if not conn.execute("SELECT to_regclass('schema_migrations_bf')").fetchone()[0]:  # type: ignore[index]
                return 0
            row = conn.execute("SELECT coalesce(max(ranges_done), 0) FROM schema_migrations_bf")
            return int(row.fetchone()[0])  # type: ignore[index]

    def get_remaining_time_in_millis(self) -> int:
        return self.start_ms - self.per_range_ms * (self.ranges() - self.base)


def test_a_backfill_over_several_invocations_is_progress_not_no_progress(
    aws: Aws, pg_dsn: str
) -> None:
    """SPEC 12: each invocation stops before the same version (the backfill) but commits ranges:
    the loop's NoProgress check counts ``progress.ranges_done``, so the execution finishes it."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE big (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0)")
        conn.execute("INSERT INTO big (id) SELECT g FROM generate_series(1, 1000) g")
    aws.put("0001_bump.up.sql", "-- patcher:backfill batch_rows=100\nUPDATE big SET n = n + 1;\n")
    aws.context = lambda: RangeClock(pg_dsn, 34_500, 1_000)
    execution = aws.state_machine().run({"action": "migrate"})
    assert execution.status == "SUCCEEDED", execution.cause
    statuses = [r["status"] for r in aws.results]
    assert statuses[-1] == "applied" and statuses.count("partial") >= 2, statuses
    done = [r["progress"]["ranges_done"] for r in aws.results]
    assert done == sorted(done) and done[-1] == 11
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT n, count(*) FROM big GROUP BY n").fetchall() == [(1, 1000)]


def test_a_database_that_comes_back_is_invoked_again(
    aws: Aws, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 33: a ``DatabaseUnavailable`` result (the writer did not answer within the
    function's own connection budget) is retried with backoff, like ``locked``."""
    aws.put("0001_a.up.sql", "CREATE TABLE a (id int);\n")
    monkeypatch.setenv("PATCHER_CONNECT_BUDGET_SECONDS", "0")
    port = psycopg.conninfo.conninfo_to_dict(pg_dsn)["port"]
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down = str(closed.getsockname()[1])
    monkeypatch.setenv("PATCHER_DATABASE_URL", pg_dsn.replace(f":{port}/", f":{down}/"))

    def writer_back_after_the_first_refusal() -> None:
        while not aws.results:
            time.sleep(0.05)
        os.environ["PATCHER_DATABASE_URL"] = pg_dsn  # restored by monkeypatch

    threading.Thread(target=writer_back_after_the_first_refusal, daemon=True).start()
    execution = aws.state_machine().run({"action": "migrate", "unavailable_backoff_seconds": 1})
    assert execution.status == "SUCCEEDED", execution.cause
    assert [r["status"] for r in aws.results] == ["failed", "applied"]
    assert aws.results[0]["error"]["type"] == "DatabaseUnavailable"
    assert history(pg_dsn) == [(1, False)]


def test_a_database_that_stays_down_fails_as_database_unavailable(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws.put("0001_a.up.sql", "CREATE TABLE a (id int);\n")
    monkeypatch.setenv("PATCHER_CONNECT_BUDGET_SECONDS", "0")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down = closed.getsockname()[1]
    monkeypatch.setenv("PATCHER_DATABASE_URL", f"postgresql://x@127.0.0.1:{down}/x")
    execution = aws.state_machine().run(
        {"action": "migrate", "unavailable_backoff_seconds": 1, "max_unavailable_retries": 2}
    )
    assert (execution.status, execution.error) == ("FAILED", "DatabaseUnavailable")
    assert "cannot connect to PostgreSQL" in (execution.cause or "")
    assert len(aws.invocations) == 3  # the first try and two retries
