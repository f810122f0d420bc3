"""The Lambda deadline (SPEC 7.1), on the fake server clock: pg_sleep advances it, and
``time_left_ms`` reads it, so nothing actually sleeps."""

from __future__ import annotations

from tests.unit.engine.kit import FAST, NO_TX, Env, error_type, pending, states

MARGIN_MS = int(FAST.time_margin_seconds * 1000)


def slow(env: Env, version: int, seconds: float, *, no_tx: bool = False) -> None:
    head = NO_TX if no_tx else ""
    env.source.pair(version, f"slow{version}", f"{head}SELECT pg_sleep({seconds});\n")


def test_nothing_starts_under_the_margin(env: Env) -> None:
    env.tables(1, 2)
    out = env.run(time_left_ms=env.db.clock.time_left(MARGIN_MS + 500))
    assert (out.status, out.error) == ("partial", None)
    assert states(out) == [(1, "up", "not_run"), (2, "up", "not_run")]
    assert pending(out) == [1, 2] and env.versions() == []
    assert any("invoke again" in w for w in out.warnings)


def test_the_run_stops_between_migrations_when_the_deadline_nears(env: Env) -> None:
    slow(env, 1, 20)
    env.tables(2, 3)
    out = env.run(time_left_ms=env.db.clock.time_left(MARGIN_MS + 20_500))
    assert out.status == "partial"
    assert states(out) == [(1, "up", "applied"), (2, "up", "not_run"), (3, "up", "not_run")]
    assert pending(out) == [2, 3] and out.current_version == 1
    assert env.versions() == [1]


def test_with_time_to_spare_everything_runs(env: Env) -> None:
    slow(env, 1, 5)
    env.tables(2)
    out = env.run(time_left_ms=env.db.clock.time_left(MARGIN_MS + 60_000))
    assert out.status == "applied" and env.versions() == [1, 2]


def test_without_a_deadline_a_long_statement_is_not_capped(env: Env) -> None:
    slow(env, 1, 600)
    out = env.run()
    assert out.status == "applied"
    assert env.db.clock.now_ms == 600_000


def test_statement_timeout_setting_caps_statements_under_a_deadline(env: Env) -> None:
    """PATCHER_STATEMENT_TIMEOUT is the session's own statement_timeout (set at connect)."""
    slow(env, 1, 5)
    out = env.run(
        session={"statement_timeout_ms": 2000},
        time_left_ms=env.db.clock.time_left(MARGIN_MS + 100_000),
    )
    assert error_type(out) == "MigrationFailed"
    assert env.db.clock.now_ms == 2000
    assert out.error is not None and out.error.details["sqlstate"] == "57014"


def test_the_cut_bounds_the_migration_as_a_whole(env: Env) -> None:
    env.source.pair(1, "two", "SELECT pg_sleep(30);\nSELECT pg_sleep(30);\n")
    out = env.run(time_left_ms=env.db.clock.time_left(45_000))
    assert out.status != "applied"
    assert 0 < env.db.clock.now_ms <= 45_000  # never past the Lambda's own end


def test_a_cut_transactional_migration_is_rolled_back(env: Env) -> None:
    env.tables(1)
    env.source.pair(2, "big", "CREATE TABLE big (id int);\nSELECT pg_sleep(999);\n")
    env.run(time_left_ms=env.db.clock.time_left(MARGIN_MS + 10_000))
    assert env.versions() == [1]
    assert "big" not in env.user_tables()
    assert env.log()[-1] == (2, "up", "failed")


def test_a_cut_no_transaction_script_stays_dirty(env: Env) -> None:
    slow(env, 1, 999, no_tx=True)
    out = env.run(time_left_ms=env.db.clock.time_left(MARGIN_MS + 10_000))
    assert out.status == "failed"
    assert env.dirty() == [(1, "up")]


def test_a_cut_no_transaction_script_says_it_stays_dirty(env: Env) -> None:
    slow(env, 1, 999, no_tx=True)
    out = env.run(time_left_ms=env.db.clock.time_left(MARGIN_MS + 10_000))
    assert out.error is not None
    assert "dirty" in out.error.message and "repair" in out.error.message


def test_a_started_migration_may_use_the_margin(env: Env) -> None:
    slow(env, 1, 15)
    out = env.run(time_left_ms=env.db.clock.time_left(MARGIN_MS + 10_000))  # 40 s left
    assert out.status == "applied"
    assert env.versions() == [1]


def test_the_first_migration_cut_by_the_deadline_is_deadline_exceeded(env: Env) -> None:
    slow(env, 1, 999)
    out = env.run(time_left_ms=env.db.clock.time_left(MARGIN_MS + 10_000))
    assert (out.status, error_type(out)) == ("failed", "DeadlineExceeded")


def test_a_later_migration_cut_by_the_deadline_makes_the_run_partial(env: Env) -> None:
    env.tables(1)
    slow(env, 2, 999)
    env.tables(3)
    out = env.run(time_left_ms=env.db.clock.time_left(MARGIN_MS + 10_000))
    assert (out.status, out.error) == ("partial", None)
    assert pending(out) == [2, 3] and env.versions() == [1]
