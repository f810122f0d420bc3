"""Baseline, and the audit log rows every kind of outcome leaves."""

from __future__ import annotations

import pytest

from patcher.core.errors import InvalidRequest
from tests.unit.engine.kit import Env, error_type, pending, states


def test_baseline_records_versions_without_running_them(env: Env) -> None:
    env.tables(1, 2, 3)
    out = env.run("baseline", target=2)
    assert out.status == "applied" and out.current_version == 2
    assert states(out) == [(1, "up", "applied"), (2, "up", "applied")]
    assert out.entries[0].change == "marked as applied without running it"
    assert env.versions() == [1, 2] and env.user_tables() == set()
    assert pending(out) == [3]
    assert env.log() == [(1, "up", "baselined"), (2, "up", "baselined")]
    assert env.called("run_transactional") == 0


def test_after_baseline_migrate_runs_only_the_rest(env: Env) -> None:
    env.tables(1, 2, 3)
    env.run("baseline", target=2)
    out = env.run()
    assert states(out) == [(3, "up", "applied")]
    assert env.user_tables() == {"t3"}


def test_baseline_records_the_files_checksums(env: Env) -> None:
    env.tables(1)
    baselined = env.run("baseline", target=1)
    assert env.db.history_rows()[0]["checksum"] == baselined.entries[0].checksum
    assert env.run().status == "up_to_date"  # no drift afterwards


def test_baseline_on_a_non_empty_history_is_refused(env: Env) -> None:
    env.tables(1, 2)
    env.run(target=1)
    out = env.run("baseline", target=2)
    assert error_type(out) == "InvalidRequest"
    assert env.versions() == [1]


def test_baseline_needs_a_target_with_migrations_under_it(env: Env) -> None:
    env.tables(5)
    with pytest.raises(InvalidRequest, match="baseline needs a target"):
        env.run("baseline")  # refused where the Request is built
    out = env.run("baseline", target=3)
    assert out.error is not None and "no migration at or below target 3" in out.error.message
    assert env.db.table_names() == set()


def test_every_audit_row_names_the_request_and_who_invoked_it(env: Env) -> None:
    env.tables(1)
    env.run()
    env.run("rollback")
    rows = env.db.log_rows()
    assert [(r["outcome"], r["request_id"], r["invoked_by"]) for r in rows] == [
        ("applied", "req-1", "unit"),
        ("reverted", "req-1", "unit"),
    ]
    assert rows[0]["id"] < rows[1]["id"]


def test_rollback_removes_the_history_row_but_never_the_log(env: Env) -> None:
    env.tables(1, 2)
    env.run()
    env.run("rollback", target=0)
    assert env.versions() == []
    assert env.log() == [
        (1, "up", "applied"),
        (2, "up", "applied"),
        (2, "down", "reverted"),
        (1, "down", "reverted"),
    ]


def test_a_failed_attempt_is_logged_with_its_error_and_duration(env: Env) -> None:
    env.source.pair(1, "bad", "SELECT pg_sleep(1);\nSELECT 1/0;")
    out = env.run()
    (row,) = env.db.log_rows()
    assert (row["version"], row["outcome"]) == (1, "failed")
    assert out.error is not None and row["error"] == out.error.message
    assert isinstance(row["duration_ms"], int)


def test_refused_runs_leave_no_audit_rows(env: Env) -> None:
    env.tables(1)
    env.run()
    env.source.pair(1, "t1", "CREATE TABLE t1 (id text);")
    env.run()
    env.run("rollback", steps=5)
    assert env.log() == [(1, "up", "applied")]


def test_an_applied_audit_row_carries_the_checksum_and_duration(env: Env) -> None:
    env.source.pair(1, "slow", "SELECT pg_sleep(2);")
    out = env.run()
    row = env.db.log_rows()[0]
    assert row["checksum"] == out.entries[0].checksum
    assert row["duration_ms"] == 2000  # the fake server clock's elapsed time
    assert env.db.history_rows()[0]["execution_ms"] == 2000
