"""The engine's backfill policy (SPEC section 12) on the fakes: ranges under the deadline
(partial, never DeadlineExceeded), resume without a range twice, lock_timeout retries of a
range alone, the replicas' lag, refusals before anything changes."""

from __future__ import annotations

from patcher.core.backfill import Checkpoint
from patcher.engine.backfill_port import backfill_port
from tests.fakes.backfill import RANGE_MS
from tests.unit.engine.kit import FAST, Env, error_type, pending

MARGIN_MS = int(FAST.time_margin_seconds * 1000)
BUMP = "-- patcher:backfill batch_rows={rows}{more}\nUPDATE items SET n = n + 1;\n"


def backfill(env: Env, table_rows: int = 100, batch: int = 10, more: str = "") -> None:
    env.db.backfill_table("items", table_rows)
    env.source.pair(1, "bump", BUMP.format(rows=batch, more=more), "SELECT 1;\n")
    env.tables(2)


def counters(env: Env) -> set[int]:
    return {r["n"] for r in env.db.rows("items")}


def test_a_backfill_runs_every_range_and_is_applied_with_the_last(env: Env) -> None:
    backfill(env)
    result = env.result()
    assert result["status"] == "applied" and env.versions() == [1, 2]
    assert result["progress"] == {"rows_done": 100, "rows_estimated": 100, "ranges_done": 11}
    assert counters(env) == {1}
    ranges = [f for name, f in env.events if name == "backfill_range"]
    assert [f["ranges_done"] for f in ranges] == list(range(1, 12))
    summary = [f for name, f in env.events if name == "backfill"]
    assert summary[-1]["outcome"] == "applied" and summary[-1]["rows_now"] == 100


def test_the_deadline_pauses_between_ranges_and_the_next_call_resumes(env: Env) -> None:
    backfill(env)
    calls = 0
    while True:
        calls += 1
        deadline = env.db.clock.now_ms + MARGIN_MS + 1000 + 3 * RANGE_MS + 5
        result = env.result(time_left_ms=env.db.clock.time_left(deadline))
        assert result["error"] is None, result
        if result["status"] != "partial":
            break
        assert [p["version"] for p in result["pending"]] == [1, 2]
        assert result["progress"]["ranges_done"] >= 1
        assert calls < 20
    assert result["status"] == "applied" and calls == 3  # 4 ranges fit each call
    assert counters(env) == {1}  # no range twice
    assert env.versions() == [1, 2]


def test_a_range_the_watchdog_cuts_is_rolled_back_and_the_run_is_partial(env: Env) -> None:
    backfill(env)

    def cut_at_third(session: object, method: str) -> None:
        if method == "backfill_range" and env.called("backfill_range") == 3:
            env.db.clock.advance(10**9)  # the deadline passes while the range runs

    env.db.on_call = cut_at_third  # type: ignore[assignment]
    out = env.run(time_left_ms=env.db.clock.time_left(MARGIN_MS + 10**6))
    assert (out.status, out.error) == ("partial", None)
    assert pending(out) == [1, 2]
    assert out.progress == {"rows_done": 20, "rows_estimated": 100, "ranges_done": 2}
    summary = [f for name, f in env.events if name == "backfill"]
    assert [(f["outcome"], f["rows_now"], f["ranges_now"]) for f in summary] == [("partial", 20, 2)]
    assert sorted(r["n"] for r in env.db.rows("items")) == [0] * 80 + [1] * 20
    env.db.on_call = None
    assert env.run().status == "applied" and counters(env) == {1}


def test_the_first_migration_of_a_call_is_never_deadline_exceeded(env: Env) -> None:
    backfill(env)
    out = env.run(time_left_ms=env.db.clock.time_left(MARGIN_MS + 500))
    assert (out.status, error_type(out)) == ("partial", None)


def test_a_range_that_hits_lock_timeout_is_retried_alone(env: Env) -> None:
    backfill(env)
    env.db.fail_statement("items", nth=3, times=2)
    out = env.run()
    assert out.status == "applied" and counters(env) == {1}
    assert env.called("backfill_range") == 11 + 2


def test_a_failed_range_keeps_the_ranges_before_it_and_is_not_dirty(env: Env) -> None:
    backfill(env)
    env.db.fail_statement("items", nth=4, error="deadlock")
    out = env.run()
    assert error_type(out) == "MigrationFailed" and env.versions() == []
    assert out.error is not None and "resumes after them" in out.error.message
    assert env.dirty() == []
    assert sorted(r["n"] for r in env.db.rows("items")) == [0] * 70 + [1] * 30
    assert env.run().status == "applied" and counters(env) == {1}


def test_commit_lost_in_flight_resumes_from_the_checkpoint(env: Env) -> None:
    backfill(env)
    env.db.fail_commit(nth=2, committed=True)
    out = env.run()
    assert out.status == "failed" and env.versions() == []
    assert [r[2] for r in env.log() if r[0] == 1] == []  # no failed row: it may have committed
    assert env.run().status == "applied" and counters(env) == {1}


def test_the_last_range_committed_then_lost_is_reported_applied(env: Env) -> None:
    backfill(env)
    env.db.fail_commit(nth=11, committed=True)  # the 11th range is the last
    out = env.run()
    assert error_type(out) == "DatabaseUnavailable" and env.versions() == [1]
    assert [(e.version, e.state) for e in out.entries][:1] == [(1, "applied")]
    assert "committed" in (out.error.message if out.error else "")
    assert "failed" not in [r[2] for r in env.log() if r[0] == 1]
    assert env.run().status == "applied" and env.versions() == [1, 2] and counters(env) == {1}


def test_lag_above_max_waits_then_runs(env: Env) -> None:
    backfill(env, more=" max_lag_ms=500")
    lags = iter([900, 800, 100] + [0] * 100)
    env.db.replica_lag = lambda: next(lags)
    assert env.run().status == "applied"
    waits = [f for name, f in env.events if name == "backfill_waiting"]
    assert [w["lag_ms"] for w in waits] == [900, 800]


def test_lag_that_never_drops_pauses_at_the_deadline(env: Env) -> None:
    backfill(env, more=" max_lag_ms=500")
    env.db.replica_lag = 5000
    deadline = MARGIN_MS + 1500
    start = env.db.clock.now_ms

    def clock_runs(session: object, method: str) -> None:
        if method == "backfill_lag":
            env.db.clock.advance(100)

    env.db.on_call = clock_runs  # type: ignore[assignment]
    out = env.run(time_left_ms=env.db.clock.time_left(start + deadline))
    assert (out.status, out.error) == ("partial", None)
    assert out.progress is not None and out.progress["ranges_done"] == 0


def test_no_primary_key_is_refused_before_anything_changes(env: Env) -> None:
    backfill(env)
    env.db.primary_keys.clear()
    out = env.run()
    assert error_type(out) == "MigrationFailed" and env.versions() == []
    assert out.error is not None and "has no primary key" in out.error.message
    assert counters(env) == {0}


def test_a_changed_file_is_refused_while_its_backfill_is_part_way(env: Env) -> None:
    backfill(env)
    session = env.db.connect()
    session.ensure_tables()
    port = backfill_port(session)
    key = port.key_of('"items"')
    assert key is not None
    from patcher.core.backfill import RangeJob
    from tests.contract.test_backend_contract import change

    template = 'UPDATE "items" SET n = n + 1 WHERE __patcher_backfill_range__'
    port.run_range(
        RangeJob(
            '"items"',
            '"items"',
            template,
            key,
            None,
            10,
            Checkpoint(1, "old", None, 0, 0, 100),
            change(1),
        )
    )
    out = env.run()
    assert error_type(out) == "ChecksumMismatch" and env.versions() == []


def test_dry_run_shows_ranges_rows_and_key_and_verify_runs_one_range(env: Env) -> None:
    backfill(env)
    result = env.result(dry_run=True)
    entry = result["migrations"][0]
    assert entry["backfill"]["key"] == ["id"] and entry["backfill"]["ranges_estimated"] == 10
    assert entry["backfill"]["rows_estimated"] == 100
    assert "UPDATE_WITHOUT_WHERE" not in [r["code"] for r in entry["risks"]]
    assert counters(env) == {0}
