"""Batched apply and rollback on the fake: which steps share a round trip (by size, count,
mode and deadline), and that a batch reports exactly what one-at-a-time runs would."""

from __future__ import annotations

from patcher.core.models import Migration, SourceObject, Step, StepKind
from patcher.engine.batched_steps import MAX_CHARS, TRANSIT_MS, batchable, closes, plan_batch
from patcher.engine.context import START_SLACK_MS
from patcher.sql.scripts import Script, ScriptSet, load_script
from tests.unit.engine.kit import FAST, NO_TX, Env, error_type, pending, states

MARGIN_MS = int(FAST.time_margin_seconds * 1000)


def script(version: int, text: str) -> Script:
    obj = SourceObject(f"{version:04d}_m.up.sql", f"{version:04d}_m.up.sql")
    return load_script(obj, text.encode())


def steps_of(*texts: str) -> tuple[list[Step], ScriptSet]:
    steps, scripts = [], {}
    for v, text in enumerate(texts, start=1):
        made = script(v, text)
        step = Step(Migration(v, "m", made.obj), "up")
        steps.append(step)
        scripts[step.key] = made
    return steps, scripts


# -- planning ------------------------------------------------------------------------------------


def test_consecutive_transactional_scripts_share_a_batch_up_to_the_count() -> None:
    steps, scripts = steps_of(*["CREATE TABLE a (id int);"] * 7)
    assert plan_batch(steps, scripts, None) == 7
    assert plan_batch(steps, scripts, None, max_items=3) == 3
    assert plan_batch(steps[5:], scripts, None, max_items=3) == 2


def test_a_batch_ends_before_the_script_that_would_pass_the_size() -> None:
    steps, scripts = steps_of("SELECT 1; -- " + "x" * 80, "SELECT 2; -- " + "y" * 80, "SELECT 3;")
    assert plan_batch(steps, scripts, None, max_chars=150) == 1
    assert plan_batch(steps, scripts, None, max_chars=500) == 3
    big, big_scripts = steps_of("SELECT 1; -- " + "x" * MAX_CHARS)  # too big even alone
    assert plan_batch(big, big_scripts, None) == 0


def test_no_transaction_scripts_and_open_scripts_run_alone() -> None:
    steps, scripts = steps_of(
        "SELECT 1;", f"{NO_TX}CREATE INDEX CONCURRENTLY i ON t (id);", "SELECT 3;"
    )
    assert plan_batch(steps, scripts, None) == 1  # the batch ends before the no-transaction one
    assert plan_batch(steps[1:], scripts, None) == 0  # which runs on its own path
    assert plan_batch(steps[2:], scripts, None) == 1
    opened, opened_scripts = steps_of("SELECT 1;", "SELECT 'never closed;", "SELECT 3;")
    assert not closes(opened_scripts[opened[1].key])
    assert plan_batch(opened, opened_scripts, None) == 1
    for text in ("SELECT $a$ body", "SELECT 1; /* open", 'SELECT "open'):
        assert not closes(script(1, text)), text
    for text in ("SELECT 1", "SELECT 1; -- last line comment", "", "-- only a comment"):
        assert closes(script(1, text)), text


def test_record_only_steps_are_not_batched() -> None:
    steps, scripts = steps_of("SELECT 1;")
    baseline = Step(steps[0].migration, "up", StepKind.BASELINE)
    assert not batchable(baseline, scripts[steps[0].key])
    assert batchable(steps[0], scripts[steps[0].key])


def test_with_too_little_time_for_a_later_start_a_batch_holds_one() -> None:
    steps, scripts = steps_of(*["SELECT 1;"] * 4)
    least = START_SLACK_MS + TRANSIT_MS
    assert plan_batch(steps, scripts, least + 1) == 4
    assert plan_batch(steps, scripts, least) == 1
    assert plan_batch(steps, scripts, START_SLACK_MS) == 1


# -- running -------------------------------------------------------------------------------------


def test_a_failure_in_the_third_of_a_batch_leaves_two_applied_and_the_rest_not_run(
    env: Env,
) -> None:
    env.tables(1, 2)
    env.source.pair(3, "bad", "CREATE TABLE t3 (id int);\n\nINSERT INTO missing VALUES (1);\n")
    env.tables(4, 5)
    out = env.run()
    assert env.called("run_batch") == 1
    assert (out.status, error_type(out)) == ("failed", "MigrationFailed")
    assert states(out) == [(1, "up", "applied"), (2, "up", "applied"), (3, "up", "failed"),
                           (4, "up", "not_run"), (5, "up", "not_run")]  # fmt: skip
    assert env.versions() == [1, 2] and env.user_tables() == {"t1", "t2"}
    assert out.error is not None
    details = out.error.details
    assert (details["file"], details["line"], details["column"]) == ("0003_bad.up.sql", 3, 13)
    assert details["statement"] == 2
    assert pending(out) == [3, 4, 5]
    assert env.log() == [(1, "up", "applied"), (2, "up", "applied"), (3, "up", "failed")]
    assert [name for name, _ in env.events].count("migration") == 3  # one per migration run


def test_a_rollback_runs_in_batches_too(env: Env) -> None:
    env.tables(1, 2, 3)
    env.run()
    out = env.run("rollback", target=0)
    assert out.status == "reverted" and env.versions() == [] and env.user_tables() == set()
    assert env.called("run_batch") == 2  # one up, one down
    assert [e.state for e in out.entries] == ["reverted"] * 3


def test_a_lock_timeout_inside_a_batch_is_retried_alone_then_the_rest_batched(env: Env) -> None:
    env.tables(1)
    env.source.pair(2, "alter", "ALTER TABLE t1 ADD COLUMN c text;\n")
    env.tables(3, 4)
    env.db.fail_statement("ALTER TABLE", times=1)
    out = env.run()
    assert out.status == "applied" and env.versions() == [1, 2, 3, 4]
    assert (env.called("run_batch"), env.called("run_transactional")) == (2, 1)


def test_the_server_guard_stops_a_batch_before_a_migration_the_deadline_would_not_start(
    env: Env,
) -> None:
    env.source.pair(1, "slow", "SELECT pg_sleep(20);\n")
    env.tables(2, 3)
    out = env.run(time_left_ms=env.db.clock.time_left(MARGIN_MS + START_SLACK_MS + 5_000))
    assert env.called("run_batch") == 1  # all three were sent together
    assert (out.status, out.error) == ("partial", None)
    assert states(out) == [(1, "up", "applied"), (2, "up", "not_run"), (3, "up", "not_run")]
    assert env.versions() == [1] and pending(out) == [2, 3]


def test_a_released_lock_in_a_batch_is_taken_back_and_reported(env: Env) -> None:
    env.source.pair(1, "unlock", "SELECT pg_advisory_unlock_all();\n")
    env.tables(2)
    out = env.run()
    assert env.called("run_batch") == 1
    assert out.status == "applied" and env.versions() == [1, 2]
    assert any("version 1 released the run's advisory lock" in w for w in out.warnings)


def test_the_deadline_rate_scales_server_side_waits_to_a_fast_clock() -> None:
    import time

    from patcher.engine.context import Deadline

    started = time.perf_counter()
    fast = Deadline(lambda: 60_000 - int((time.perf_counter() - started) * 10_000), 30)
    real = Deadline(lambda: 60_000 - int((time.perf_counter() - started) * 1_000), 30)
    assert fast.rate() == 1.0  # too soon to tell: the real clock's rate
    time.sleep(0.05)
    assert 5 < fast.rate() < 15
    assert real.rate() < 1.1 and Deadline(None, 30).rate() == 1.0
