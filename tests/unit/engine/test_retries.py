"""A statement that hits lock_timeout is retried with back-off, a few times, then fails."""

from __future__ import annotations

import dataclasses

from tests.unit.engine.kit import FAST, NO_TX, Env, error_type, states


def alter(env: Env) -> None:
    env.tables(1)
    env.source.pair(2, "alter", "ALTER TABLE t1 ADD COLUMN name text;\n")


def test_a_lock_timeout_that_clears_on_retry_succeeds(env: Env) -> None:
    alter(env)
    fault = env.db.fail_statement("ALTER TABLE", times=2)
    out = env.run()
    assert out.status == "applied"
    assert fault.fired == 2
    # one batch (version 1, then version 2's first attempt), two more attempts of version 2
    # alone, on the one-at-a-time path that does the retries
    assert (env.called("run_batch"), env.called("run_transactional")) == (1, 2)
    assert env.versions() == [1, 2]
    assert env.log() == [(1, "up", "applied"), (2, "up", "applied")]


def test_gives_up_after_lock_retries_and_says_what_to_do(env: Env) -> None:
    alter(env)
    fault = env.db.fail_statement("ALTER TABLE", times=10)
    out = env.run()
    assert (out.status, error_type(out)) == ("failed", "MigrationFailed")
    assert fault.fired == FAST.lock_retries + 1
    assert out.error is not None and "lock_timeout" in out.error.message
    assert out.error.details["sqlstate"] == "55P03"
    assert env.versions() == [1]
    assert env.log()[-1] == (2, "up", "failed")
    assert len(env.log()) == 2  # one failed row for the run, not one per attempt


def test_zero_retries_means_one_attempt(env: Env) -> None:
    alter(env)
    fault = env.db.fail_statement("ALTER TABLE", times=10)
    env.run(options=dataclasses.replace(FAST, lock_retries=0))
    assert fault.fired == 1


def test_other_errors_are_not_retried(env: Env) -> None:
    env.source.pair(1, "bad", "SELECT 1/0;")
    out = env.run()
    assert error_type(out) == "MigrationFailed"
    assert (env.called("run_batch"), env.called("run_transactional")) == (1, 0)


def test_a_retried_transactional_attempt_leaves_nothing_behind(env: Env) -> None:
    env.tables(1)
    env.source.pair(2, "two", "CREATE TABLE early (id int);\nALTER TABLE t1 ADD COLUMN c text;\n")
    env.db.fail_statement("ALTER TABLE", times=1)
    out = env.run()
    assert out.status == "applied"  # CREATE TABLE early ran twice: the first was rolled back
    assert "early" in env.user_tables()


def test_no_transaction_scripts_retry_only_the_statement_that_failed(env: Env) -> None:
    env.tables(1)
    env.source.pair(
        2, "nt", NO_TX + "CREATE TABLE a (id int);\nCREATE INDEX CONCURRENTLY a_id ON a (id);\n"
    )
    fault = env.db.fail_statement("CONCURRENTLY", times=2)
    out = env.run()
    assert states(out)[-1] == (2, "up", "applied")
    assert fault.fired == 2
    assert env.called("run_statements") == 4  # CREATE TABLE once, the index three times
    assert env.dirty() == [] and "a_id" in env.db.index_names()


def test_a_no_transaction_lock_timeout_that_never_clears_leaves_it_dirty(env: Env) -> None:
    env.tables(1)
    env.source.pair(2, "nt", NO_TX + "CREATE INDEX CONCURRENTLY i ON t1 (id);\n")
    env.db.fail_statement("CONCURRENTLY", times=10)
    out = env.run()
    assert error_type(out) == "MigrationFailed"
    assert env.dirty() == [(2, "up")]
    assert env.log()[-2:] == [(2, "up", "started"), (2, "up", "failed")]
