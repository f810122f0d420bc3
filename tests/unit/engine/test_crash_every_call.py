"""SPEC 7 item 6 on the fake: a session lost at every backend call of a run (and a COMMIT
whose answer is lost, committed or not) leaves history equal to the catalog, a dirty mark only
on the no-transaction version, no lock held, no `failed` audit row for a committed version,
and a next run (plus repair of a dirty mark) that completes."""

from __future__ import annotations

import pytest

from tests.unit.engine.kit import NO_TX, Env

NO_TX_VERSION = 2


def corpus(env: Env) -> None:
    env.tables(1)
    env.source.pair(2, "idx", f"{NO_TX}CREATE INDEX CONCURRENTLY IF NOT EXISTS i2 ON t1 (id);\n")
    env.source.pair(3, "t3", "CREATE TABLE t3 (id int);\nINSERT INTO t3 VALUES (3);\n")
    env.tables(4, 5)


def check_invariants(env: Env) -> None:
    versions = env.versions()
    dirty = {v for v, _ in env.dirty()}
    assert dirty <= {NO_TX_VERSION}, f"dirty outside the no-transaction version: {dirty}"
    for v in (1, 3, 4, 5):  # transactional: all or nothing, with its history row
        assert (f"t{v}" in env.user_tables()) == (v in versions), f"version {v} half-applied"
    if NO_TX_VERSION in versions and NO_TX_VERSION not in dirty:
        assert "i2" in env.db.index_names()
    assert env.db.locks == {}, "an advisory lock outlived the run"
    last: dict[int, str] = {}
    for v, _, outcome in env.log():
        last[v] = outcome
    for v in set(versions) - dirty:  # the attempt that committed is the last one logged
        assert last.get(v) == "applied", (
            f"version {v} committed, but its last audit row is {last.get(v)}"
        )


def recover(env: Env) -> None:
    if env.dirty():
        assert env.run("repair").status == "applied"
    out = env.run()
    assert out.status in ("applied", "up_to_date"), out.error
    assert env.versions() == [1, 2, 3, 4, 5]
    check_invariants(env)


def calls_of_a_clean_run() -> int:
    env = Env()
    corpus(env)
    assert env.run().status == "applied"
    return len(env.db.calls)


CALLS = calls_of_a_clean_run()


def test_a_clean_run_makes_enough_calls_to_cut() -> None:
    # lock, checks, history, version 1 (a batch of one), the no-transaction version (its dirty
    # mark, statements, clean finish), versions 3 to 5 (one batch), close
    assert CALLS >= 10, CALLS


@pytest.mark.parametrize("k", range(1, CALLS + 1))
def test_a_session_lost_at_call_k_keeps_the_invariants(k: int) -> None:
    env = Env()
    corpus(env)
    fault = env.db.fail_call(nth=k)
    out = env.run()
    assert fault.fired == 1, f"call {k} was never cut"
    assert out.status != "applied" or env.versions() == [1, 2, 3, 4, 5]
    check_invariants(env)
    recover(env)


@pytest.mark.parametrize("committed", [True, False], ids=["committed", "not-committed"])
@pytest.mark.parametrize("nth", [1, 2, 3, 4])
def test_a_commit_whose_answer_is_lost_is_reported_as_it_happened(
    nth: int, committed: bool
) -> None:
    env = Env()
    corpus(env)
    env.db.fail_commit(nth=nth, committed=committed)
    out = env.run()
    assert out.status == "failed" and out.error is not None
    assert "rolled back" not in out.error.message or not committed
    check_invariants(env)
    states = {e.version: e.state for e in out.entries}
    cut = [v for v in (1, 3, 4, 5)][nth - 1]
    assert states[cut] == ("applied" if committed else "failed")
    assert (cut in env.versions()) == committed
    recover(env)
