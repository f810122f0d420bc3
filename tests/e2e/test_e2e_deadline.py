"""The Lambda deadline: stop early with ``partial``, and cancel a runaway statement cleanly."""

from __future__ import annotations

import time

import pytest

from patcher.dev.devrun import LambdaContext
from tests.e2e.e2ekit import LambdaEnv, event
from tests.fixtures.engine import history, query, tables


class FastClock(LambdaContext):
    """A Lambda clock running ``speed`` times too fast from the first time it is read (so the
    test's own setup costs nothing)."""

    def get_remaining_time_in_millis(self) -> int:
        if not getattr(self, "_read", False):
            self._read, self._started = True, time.monotonic()
        return super().get_remaining_time_in_millis()


def test_forty_seconds_left_with_a_thirty_second_margin_ends_partial(
    lambda_env: LambdaEnv,
) -> None:
    """A clock at 10x: each 0.2 s migration costs 2 of the 10 usable seconds."""
    for v in range(1, 9):
        lambda_env.put(
            f"{v:04d}_t{v}.up.sql",
            f"CREATE TABLE t{v} (id int);\nINSERT INTO t{v} VALUES ({v});\nSELECT pg_sleep(0.2);\n",
        )
    result = lambda_env.invoke(event("migrate"), FastClock(40_000, speed=10))
    assert (result["ok"], result["status"]) == (True, "partial")
    done = [e["version"] for e in result["migrations"] if e["state"] == "applied"]
    left = [p["version"] for p in result["pending"]]
    assert 1 <= len(done) < 8 and done + left == list(range(1, 9))
    assert all(e["state"] in ("applied", "not_run") for e in result["migrations"])
    assert result["current_version"] == done[-1]
    assert any("invoke again" in w for w in result["warnings"])
    # nothing half-applied: every applied version whole and recorded, every pending one absent
    assert history(lambda_env.dsn) == [(v, False) for v in done]
    assert {f"t{v}" for v in done} <= tables(lambda_env.dsn)
    assert not {f"t{v}" for v in left} & tables(lambda_env.dsn)
    assert all(query(lambda_env.dsn, f"SELECT id FROM t{v}") == [(v,)] for v in done)

    rest = lambda_env.invoke(event("migrate"))  # the next invocation carries on
    assert (rest["status"], rest["current_version"]) == ("applied", 8)
    assert [e["version"] for e in rest["migrations"]] == left


def test_no_time_at_all_runs_nothing(lambda_env: LambdaEnv) -> None:
    lambda_env.put("0001_a.up.sql", "CREATE TABLE a (id int);\n")
    result = lambda_env.invoke(event("migrate"), LambdaContext(30_500))
    assert (result["ok"], result["status"]) == (True, "partial")
    assert [p["version"] for p in result["pending"]] == [1]
    assert "a" not in tables(lambda_env.dsn)


def test_a_runaway_migration_is_cut_at_the_safety_and_left_for_the_next_invocation(
    lambda_env: LambdaEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5 s left, 1 s margin: version 2 starts (more than the margin is left), may use the
    margin, and is cancelled 3 s (the safety) before the deadline; an earlier version ran in
    this invocation, so the run is partial with version 2 first in pending."""
    monkeypatch.setenv("PATCHER_TIME_MARGIN_SECONDS", "1")
    lambda_env.put("0001_fast.up.sql", "CREATE TABLE fast (id int);\n")
    lambda_env.put(
        "0002_runaway.up.sql",
        "CREATE TABLE half_done (id int);\nINSERT INTO half_done VALUES (1);\n"
        "SELECT pg_sleep(10);\n",
    )
    started = time.monotonic()
    result = lambda_env.invoke(event("migrate"), LambdaContext(5_000))
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 4.5, f"cut {elapsed:.1f} s into a 5 s invocation (safety 3 s)"
    assert (result["ok"], result["status"], result["error"]) == (True, "partial", None)
    assert [p["version"] for p in result["pending"]] == [2]
    assert [(e["version"], e["state"]) for e in result["migrations"]] == [
        (1, "applied"),
        (2, "not_run"),
    ]
    assert any("cut by the Lambda deadline" in w for w in result["warnings"])
    assert "half_done" not in tables(lambda_env.dsn), "the cut migration left no trace"
    assert history(lambda_env.dsn) == [(1, False)]
    log = query(lambda_env.dsn, "SELECT version, outcome FROM schema_migrations_log ORDER BY id")
    assert log == [(1, "applied"), (2, "failed")]


def test_a_migration_that_cannot_fit_one_invocation_is_deadline_exceeded(
    lambda_env: LambdaEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATCHER_TIME_MARGIN_SECONDS", "1")
    lambda_env.put("0001_runaway.up.sql", "CREATE TABLE r (id int);\nSELECT pg_sleep(10);\n")
    # A warm container: the first invocation's imports and S3 client are not this run's time
    # (a cold one on a loaded machine spent seconds of the 4.5 before the migration started)
    assert lambda_env.invoke(event("status"))["ok"]
    result = lambda_env.invoke(event("migrate"), LambdaContext(4_500))
    assert (result["ok"], result["status"]) == (False, "failed")
    error = result["error"]
    assert (error["type"], error["version"], error["statement"]) == ("DeadlineExceeded", 1, 2)
    assert "long-run path" in error["message"] and "patcher migrate --target 1" in error["message"]
    assert "r" not in tables(lambda_env.dsn) and history(lambda_env.dsn) == []


def test_a_migrations_own_statement_timeout_holds_in_lambda(lambda_env: LambdaEnv) -> None:
    """SET LOCAL statement_timeout in the script is the script's guard; the deadline does not
    override it (it used to send its own cap before every statement)."""
    lambda_env.put(
        "0001_guarded.up.sql",
        "SET LOCAL statement_timeout = '1s';\nCREATE TABLE g (id int);\nSELECT pg_sleep(3);\n",
    )
    result = lambda_env.invoke(event("migrate"), LambdaContext(120_000))
    assert result["status"] == "failed"
    assert (result["error"]["type"], result["error"]["sqlstate"]) == ("MigrationFailed", "57014")
    assert "g" not in tables(lambda_env.dsn)
