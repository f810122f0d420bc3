"""No-transaction scripts: a dirty mark first, statement by statement, then the mark cleared."""

from __future__ import annotations

from tests.unit.engine.kit import NO_TX, Env, error_type, states

CIC = NO_TX + "CREATE TABLE a (id int);\nCREATE INDEX CONCURRENTLY a_id ON a (id);\n"


def test_success_marks_dirty_then_clears_the_mark(env: Env) -> None:
    env.source.pair(1, "nt", CIC)
    out = env.run()
    assert states(out) == [(1, "up", "applied")]
    assert env.dirty() == [] and env.versions() == [1]
    assert env.log() == [(1, "up", "started"), (1, "up", "applied")]
    calls = [
        m for m in env.db.methods_called() if m in ("mark_dirty", "run_statements", "finish_clean")
    ]
    assert calls == ["mark_dirty", "run_statements", "run_statements", "finish_clean"]
    assert "a_id" in env.db.index_names()


def test_failure_leaves_the_mark_and_what_ran_before(env: Env) -> None:
    env.source.pair(
        1, "nt", NO_TX + "CREATE TABLE a (id int);\nSELECT 1/0;\nCREATE TABLE b (id int);"
    )
    out = env.run()
    assert error_type(out) == "MigrationFailed"
    assert env.dirty() == [(1, "up")]
    assert env.user_tables() == {"a"}
    assert out.error is not None and "marked dirty" in out.error.message
    assert out.error.details["statement"] == 2
    assert env.log() == [(1, "up", "started"), (1, "up", "failed")]


def test_a_no_transaction_down_script_marks_dirty_down_then_drops_the_row(env: Env) -> None:
    env.source.pair(1, "nt", CIC, NO_TX + "DROP INDEX CONCURRENTLY a_id;\nDROP TABLE a;\n")
    env.run()
    out = env.run("rollback")
    assert states(out) == [(1, "down", "reverted")]
    assert env.versions() == [] and env.user_tables() == set()
    assert env.log()[-2:] == [(1, "down", "started"), (1, "down", "reverted")]


def test_a_failed_no_transaction_down_leaves_it_dirty_down(env: Env) -> None:
    env.source.pair(1, "nt", "CREATE TABLE a (id int);", NO_TX + "DROP INDEX nope;\n")
    env.run()
    out = env.run("rollback")
    assert error_type(out) == "MigrationFailed"
    assert env.dirty() == [(1, "down")]
    assert out.error is not None and out.error.details["sqlstate"] == "42704"


def test_a_lost_connection_mid_script_leaves_it_dirty_and_says_so(env: Env) -> None:
    env.source.pair(1, "nt", CIC)
    env.db.fail_statement("CONCURRENTLY", error="lost")
    out = env.run()
    assert out.error is not None and "marked dirty" in out.error.message
    assert env.dirty() == [(1, "up")]
    assert env.log() == [(1, "up", "started"), (1, "up", "failed")]  # logged after reconnect
    assert env.db.locks == {}


def test_mixed_runs_keep_order_across_modes(env: Env) -> None:
    env.tables(1)
    env.source.pair(2, "nt", CIC)
    env.tables(3)
    out = env.run()
    assert [e.state for e in out.entries] == ["applied"] * 3
    assert [e.transactional for e in out.entries] == [True, False, True]
    assert env.versions() == [1, 2, 3]
