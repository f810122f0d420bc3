"""Which versions a migrate or rollback runs, in what order, up to which target."""

from __future__ import annotations

import pytest

from patcher.core.errors import InvalidRequest
from tests.unit.engine.kit import Env, error_type, pending, states


def test_migrate_applies_every_pending_version_in_order(env: Env) -> None:
    env.tables(1, 2, 3)
    out = env.run()
    assert out.status == "applied"
    assert states(out) == [(1, "up", "applied"), (2, "up", "applied"), (3, "up", "applied")]
    assert env.versions() == [1, 2, 3]
    assert env.user_tables() == {"t1", "t2", "t3"}
    assert out.current_version == 3 and pending(out) == []


def test_versions_compare_as_integers_not_as_names(env: Env) -> None:
    env.source.write("9_nine.up.sql", "CREATE TABLE t9 (id int);")
    env.source.write("10_ten.up.sql", "CREATE TABLE t10 (id int);")
    out = env.run()
    assert [e.version for e in out.entries] == [9, 10]
    assert [v for v, _, _ in env.log()] == [9, 10]


def test_gaps_between_versions_are_fine(env: Env) -> None:
    env.tables(1, 5, 20)
    out = env.run()
    assert env.versions() == [1, 5, 20]
    assert out.current_version == 20


def test_target_stops_at_the_highest_version_not_above_it(env: Env) -> None:
    env.tables(1, 5, 20)
    out = env.run(target=7)
    assert env.versions() == [1, 5]
    assert pending(out) == [20]
    assert out.current_version == 5


def test_target_zero_applies_nothing(env: Env) -> None:
    env.tables(1, 2)
    out = env.run(target=0)
    assert out.status == "up_to_date"
    assert env.versions() == [] and env.user_tables() == set()
    assert pending(out) == [1, 2]


def test_target_below_current_warns_that_migrate_never_reverts(env: Env) -> None:
    env.tables(1, 2, 3)
    env.run()
    out = env.run(target=1)
    assert out.status == "up_to_date"
    assert any("migrate never reverts" in w for w in out.warnings)
    assert env.versions() == [1, 2, 3]


def test_second_migrate_is_up_to_date_and_runs_nothing(env: Env) -> None:
    env.tables(1, 2)
    env.run()
    runs = env.called("run_transactional")
    out = env.run()
    assert out.status == "up_to_date" and out.entries == []
    assert env.called("run_transactional") == runs
    assert out.current_version == 2


def test_a_version_added_later_is_applied_alone(env: Env) -> None:
    env.tables(1, 2)
    env.run()
    env.tables(3)
    out = env.run()
    assert states(out) == [(3, "up", "applied")]
    assert env.versions() == [1, 2, 3]


def test_rollback_reverts_the_newest_version_by_default(env: Env) -> None:
    env.tables(1, 2, 3)
    env.run()
    out = env.run("rollback")
    assert out.status == "reverted"
    assert states(out) == [(3, "down", "reverted")]
    assert env.versions() == [1, 2] and "t3" not in env.user_tables()
    assert out.current_version == 2 and pending(out) == [3]


def test_rollback_steps_reverts_newest_first(env: Env) -> None:
    env.tables(1, 2, 3)
    env.run()
    out = env.run("rollback", steps=2)
    assert states(out) == [(3, "down", "reverted"), (2, "down", "reverted")]
    assert env.versions() == [1]


def test_rollback_to_a_target_reverts_everything_above_it(env: Env) -> None:
    env.tables(1, 2, 3, 4)
    env.run()
    out = env.run("rollback", target=2)
    assert [e.version for e in out.entries] == [4, 3]
    assert env.versions() == [1, 2]
    assert out.current_version == 2


def test_rollback_to_zero_reverts_everything(env: Env) -> None:
    env.tables(1, 2)
    env.run()
    out = env.run("rollback", target=0)
    assert env.versions() == [] and env.user_tables() == set()
    assert out.current_version is None and pending(out) == [1, 2]


def test_rollback_more_steps_than_applied_is_refused(env: Env) -> None:
    env.tables(1, 2)
    env.run()
    out = env.run("rollback", steps=3)
    assert (out.status, error_type(out)) == ("invalid", "InvalidRequest")
    assert env.versions() == [1, 2]


def test_rollback_across_an_irreversible_version_reverts_nothing(env: Env) -> None:
    env.tables(1, 3)
    env.source.pair(2, "seed", "CREATE TABLE seed (id int);")
    env.run()
    out = env.run("rollback", target=1)
    assert (out.status, error_type(out)) == ("invalid", "Irreversible")
    assert out.error is not None and out.error.details["version"] == 2
    assert env.versions() == [1, 2, 3] and "t3" in env.user_tables()


def test_rollback_with_nothing_applied_says_so(env: Env) -> None:
    env.tables(1)
    out = env.run("rollback", target=0)
    assert out.status == "up_to_date"
    assert "nothing to roll back" in out.warnings


def test_an_empty_script_is_recorded_with_a_warning(env: Env) -> None:
    env.source.pair(1, "noop", "-- nothing here\n")
    out = env.run()
    assert env.versions() == [1]
    assert any("0001_noop.up.sql has no statements" in w for w in out.warnings)


def test_invalid_requests_are_refused_before_connecting(env: Env) -> None:
    env.tables(1)
    for action, fields in (("migrate", {"steps": 2}), ("status", {"target": 3})):
        with pytest.raises(InvalidRequest):  # where the Request is built: it never runs
            env.run(action, **fields)
    assert env.db.sessions == []
