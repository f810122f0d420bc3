"""The retry policy (SPEC 7 item 5): a no-transaction CALL or DO that started is never retried;
a transactional migration and the other no-transaction statements still are. And the advice a
failed no-transaction script gives says what repair does for its direction."""

from __future__ import annotations

import pytest

from patcher.core.errors import StatementFailed
from patcher.core.models import Migration, SourceObject, Step
from patcher.engine.failures import deadline_exceeded
from patcher.engine.lock_retry import commits_inside
from patcher.sql.scripts import Script, load_script
from tests.unit.engine.kit import FAST, NO_TX, Env, error_type

CALL = NO_TX + "CREATE TABLE a (id int);\nCALL add_interest();\nCREATE TABLE b (id int);\n"


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("CALL add_interest()", "CALL"),
        ("call app.batch(3)", "CALL"),
        ("DO $$ BEGIN COMMIT; END $$", "DO"),
        ("-- batches\n/* 1 to 3 */ do\n$$ BEGIN END $$", "DO"),
        ("SELECT add_interest()", None),  # a function cannot COMMIT
        ("CREATE DOMAIN d AS int", None),
        ("CALLBACK", None),
        ("UPDATE t SET do = 1", None),
    ],
)
def test_what_may_commit_inside(text: str, command: str | None) -> None:
    assert commits_inside(text) == command


def test_a_no_transaction_call_that_hit_lock_timeout_is_not_retried(env: Env) -> None:
    env.source.pair(1, "interest", CALL)
    fault = env.db.fail_statement("CALL", times=10)
    out = env.run()
    assert fault.fired == 1  # one attempt: no retry
    assert error_type(out) == "MigrationFailed" and out.error is not None
    message = out.error.message
    assert "(statement 2): canceling statement due to lock timeout" in message
    assert "statement 2 (CALL add_interest()) may have committed work" in message
    assert "so it was not retried" in message and "every retry" not in message
    assert "first statement ran and stays in effect, and the version is marked dirty" in message
    assert "the next migrate re-runs the whole up script" in message
    assert out.error.details["statement"] == 2
    assert env.dirty() == [(1, "up")] and env.user_tables() == {"a"}
    assert env.log() == [(1, "up", "started"), (1, "up", "failed")]


def test_a_no_transaction_do_is_not_retried(env: Env) -> None:
    env.source.pair(1, "interest", NO_TX + "DO $$ BEGIN PERFORM 1; COMMIT; END $$;\n")
    fault = env.db.fail_statement("DO", times=10)
    out = env.run()
    assert fault.fired == 1
    assert out.error is not None and "(DO $$ BEGIN PERFORM 1; COMMIT; END $$)" in out.error.message


def test_other_no_transaction_statements_are_still_retried(env: Env) -> None:
    env.source.pair(1, "nt", NO_TX + "CREATE TABLE a (id int);\n")
    fault = env.db.fail_statement("CREATE TABLE", times=10)
    out = env.run()
    assert fault.fired == FAST.lock_retries + 1
    assert out.error is not None and "every retry" in out.error.message
    assert "may have committed" not in out.error.message


def test_a_transactional_call_is_still_retried(env: Env) -> None:
    """Inside the migration's transaction a procedure cannot COMMIT: each attempt rolls back."""
    env.source.pair(1, "interest", "CALL add_interest();\n")
    fault = env.db.fail_statement("CALL", times=10)
    out = env.run()
    assert fault.fired == FAST.lock_retries + 1
    assert out.error is not None and "may have committed" not in out.error.message
    assert env.versions() == [] and env.dirty() == []


def test_a_call_cut_by_a_lost_connection_says_what_may_have_committed(env: Env) -> None:
    env.source.pair(1, "interest", CALL)
    env.db.fail_statement("CALL", error="lost")
    out = env.run()
    assert out.error is not None
    assert "connection was lost" in out.error.message
    assert "statement 2 (CALL add_interest()) may have committed work" in out.error.message
    assert env.dirty() == [(1, "up")]


def test_a_failed_no_transaction_down_says_what_repair_does_to_it(env: Env) -> None:
    env.source.pair(1, "a", "CREATE TABLE a (id int);", NO_TX + "DROP TABLE a;\nDROP INDEX nope;\n")
    env.run()
    out = env.run("rollback")
    assert error_type(out) == "MigrationFailed" and out.error is not None
    message = out.error.message
    assert "version 1 down failed" in message
    assert "first statement ran and stays in effect, and the version is marked dirty" in message
    assert "it clears the dirty mark, the version is applied again" in message
    assert "the next rollback re-runs the whole down script" in message
    assert "pending again" not in message and "next migrate re-runs" not in message
    assert env.dirty() == [(1, "down")]
    # What it said is what happens.
    assert env.run("repair").status == "applied"
    assert env.versions() == [1] and env.dirty() == []
    assert env.run().status == "up_to_date"  # migrate does not re-run the up script
    again = env.run("rollback")
    assert again.error is not None and again.error.details["statement"] == 1  # DROP TABLE a


def _call_step(direction: str = "up") -> tuple[Step, Script]:
    obj = SourceObject(f"1_interest.{direction}.sql", "k")
    step = Step(Migration(1, "interest", obj, obj), direction)  # type: ignore[arg-type]
    return step, load_script(obj, CALL.encode())


def test_a_call_the_deadline_cut_while_it_ran_may_have_committed() -> None:
    step, script = _call_step()
    cancelled = StatementFailed("canceling statement", index=1, sqlstate="57014", cancelled=True)
    message = deadline_exceeded(step, script, cancelled, 12).message
    assert "statement 2 (CALL add_interest()) may have committed work" in message
    assert "run repair (it removes the version's history row" in message


def test_a_call_cut_before_it_was_sent_did_not_start() -> None:
    step, script = _call_step("down")
    unsent = StatementFailed("cut before it was sent", index=1, cancelled=True)
    message = deadline_exceeded(step, script, unsent, 12).message
    assert "may have committed" not in message
    assert "the next rollback re-runs the whole down script" in message
