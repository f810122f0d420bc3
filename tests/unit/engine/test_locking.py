"""The advisory lock: waiting with a holder, giving up, the settled exit, holding it throughout."""

from __future__ import annotations

import dataclasses
import time
from hashlib import sha256

import pytest

from patcher.core.models import HistoryChange
from tests.fakes.backend import FakeBackend
from tests.unit.engine.kit import FAST, Env, error_type, states


def test_a_held_lock_ends_the_run_locked_naming_the_holder(env: Env) -> None:
    env.tables(1)
    holder = env.other("deploy-42")
    assert holder.try_lock()
    out = env.run()
    assert (out.status, error_type(out)) == ("locked", "LockTimeout")
    assert out.error is not None
    assert out.error.details["holder_pid"] == holder.pid
    assert out.error.details["holder_application_name"] == "deploy-42"
    assert f"pg_terminate_backend({holder.pid})" in out.error.message
    assert env.db.table_names() == set()  # nothing created while waiting


def test_the_run_waits_and_proceeds_when_the_holder_lets_go(env: Env) -> None:
    env.tables(1)
    holder = env.other()
    assert holder.try_lock()
    tries: list[int] = []

    def release_on_third_try(session: FakeBackend, method: str) -> None:
        if method == "try_lock" and session is not holder:
            tries.append(1)
            if len(tries) == 3:
                holder.unlock()

    env.db.on_call = release_on_third_try
    options = dataclasses.replace(FAST, lock_wait_seconds=2.0)
    out = env.run(options=options)
    assert out.status == "applied"
    assert len(tries) == 3
    names = [name for name, _ in env.events if name.startswith("lock")]
    assert names[-1] == "lock_acquired" and set(names[:-1]) == {"lock_waiting"}
    waiting = next(fields for name, fields in env.events if name == "lock_waiting")
    assert waiting["holder_pid"] == holder.pid and waiting["waited_ms"] >= 0
    assert waiting["holder"] and "pid" in waiting["holder"]


def test_the_lock_is_released_after_the_run(env: Env) -> None:
    env.tables(1)
    env.run()
    assert env.db.locks == {}
    assert env.other().try_lock()


def test_the_lock_is_released_after_a_failed_run(env: Env) -> None:
    env.source.pair(1, "bad", "SELECT 1/0;")
    out = env.run()
    assert out.status == "failed"
    assert env.db.locks == {}


MIGRATION_STARTS = ("run_transactional", "batch_item")  # one at a time, or in a batch


def test_the_lock_is_held_while_each_migration_runs(env: Env) -> None:
    env.tables(1, 2)
    holders: list[int | None] = []
    env.db.on_call = lambda session, method: (
        holders.append(env.db.holder_pid(session.key)) if method in MIGRATION_STARTS else None
    )
    env.run()
    runner = env.db.sessions[0].pid
    assert holders == [runner, runner]


def test_a_migrate_behind_a_run_that_applied_everything_stops_waiting(env: Env) -> None:
    env.tables(1, 2)
    holder = env.other()
    assert holder.try_lock()

    def apply_on_second_try(session: FakeBackend, method: str) -> None:
        if method == "try_lock" and session is not holder and env.called("try_lock") == 3:
            holder.ensure_tables()  # the holder applies both versions while we wait
            for v in (1, 2):
                body = f"CREATE TABLE t{v} (id int);\n".encode()
                holder.record([HistoryChange(v, f"t{v}", "up", sha256(body).hexdigest())])

    env.db.on_call = apply_on_second_try
    options = dataclasses.replace(FAST, lock_wait_seconds=5.0)
    started = time.monotonic()
    out = env.run(options=options)
    assert out.status == "up_to_date" and out.error is None
    assert time.monotonic() - started < 2
    assert [name for name, _ in env.events][-1] == "lock_not_needed"
    assert env.db.holder_pid(holder.key) == holder.pid


def test_a_waiter_reads_each_applied_file_once(env: Env) -> None:
    env.tables(1, 2, 3)
    env.run(target=2)
    holder = env.other()  # another deploy of version 3, which we wait for
    assert holder.try_lock()

    def apply_three(session: FakeBackend, method: str) -> None:
        if method == "try_lock" and session is not holder and env.called("try_lock") == 3:
            holder.record(
                [HistoryChange(3, "t3", "up", sha256(b"CREATE TABLE t3 (id int);\n").hexdigest())]
            )

    env.db.on_call = apply_three
    env.source.reads.clear()
    out = env.run(options=dataclasses.replace(FAST, lock_wait_seconds=5.0))
    assert out.status == "up_to_date" and out.error is None
    assert [name for name, _ in env.events][-1] == "lock_not_needed"
    ups = sorted(k for k in env.source.reads if ".up." in k)  # 1, 2 before the wait; 3 after
    assert ups == sorted(set(ups)) and len(ups) == 3, env.source.reads


def test_an_up_to_date_migrate_needs_no_lock(env: Env) -> None:
    env.tables(1, 2)
    env.run()
    holder = env.other()
    assert holder.try_lock()
    calls = env.called("try_lock")
    env.events.clear()
    out = env.run(options=dataclasses.replace(FAST, lock_wait_seconds=5.0))
    assert out.status == "up_to_date" and out.error is None
    assert env.called("try_lock") == calls  # not even tried: the holder is not waited for
    assert not [name for name, _ in env.events if name.startswith("lock")]


def test_an_up_to_date_migrate_still_refuses_a_changed_file(env: Env) -> None:
    env.tables(1, 2)
    env.run()
    env.source.pair(2, "t2", "CREATE TABLE t2 (id bigint);\n", "DROP TABLE t2;\n")
    assert env.other().try_lock()  # a holder: the file is still refused, not waited on
    assert error_type(env.run()) == "ChecksumMismatch"
    env.db.locks.clear()
    assert error_type(env.run()) == "ChecksumMismatch"


def test_a_migrate_with_work_left_keeps_waiting_for_the_lock(env: Env) -> None:
    env.tables(1)
    env.run()
    env.tables(2)
    holder = env.other()
    assert holder.try_lock()
    out = env.run()
    assert error_type(out) == "LockTimeout"
    assert env.versions() == [1]


def test_a_run_mid_way_through_a_no_transaction_script_is_not_settled(env: Env) -> None:
    env.tables(1, 2)
    env.run(target=1)
    holder = env.other()  # another run, now inside version 2's no-transaction script
    assert holder.try_lock()
    holder.mark_dirty(HistoryChange(2, "t2", "up", "sum"))
    out = env.run()
    assert error_type(out) == "LockTimeout"
    assert "lock_not_needed" not in [name for name, _ in env.events]


def test_the_lambda_budget_caps_the_lock_wait(env: Env) -> None:
    env.tables(1)
    assert env.other().try_lock()
    options = dataclasses.replace(FAST, lock_wait_seconds=60.0)
    started = time.monotonic()
    out = env.run(options=options, time_left_ms=lambda: 30_050)  # 50 ms above the margin
    assert out.status == "locked"
    assert time.monotonic() - started < 2


def test_dry_run_and_status_take_no_lock(env: Env) -> None:
    env.tables(1)
    assert env.other().try_lock()
    assert env.run(dry_run=True).status == "planned"
    assert env.run("status").status == "planned"
    assert env.run("rollback", dry_run=True).status == "up_to_date"
    assert env.called("try_lock") == 1  # the other session's only


def test_verify_needs_the_lock(env: Env) -> None:
    env.tables(1)
    assert env.other().try_lock()
    out = env.run(dry_run=True, verify=True)
    assert out.status == "locked"


def test_a_lock_taken_by_another_session_mid_run_stops_with_lock_lost(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.source.pair(1, "unlock", "SELECT pg_advisory_unlock_all();")
    env.tables(2)
    other = env.other("intruder")
    release = FakeBackend._release_all

    def release_then_steal(session: FakeBackend) -> None:
        release(session)
        if session is not other and not session.closed:
            other.try_lock()  # the moment version 1 gives the lock away

    monkeypatch.setattr(FakeBackend, "_release_all", release_then_steal)
    out = env.run()
    assert error_type(out) == "LockLost"
    assert states(out)[0] == (1, "up", "applied")
    assert env.versions() == [1]
    assert out.error is not None and "intruder" in out.error.message


def test_a_released_lock_is_taken_back_before_the_next_migration(env: Env) -> None:
    env.source.pair(1, "unlock", "SELECT pg_advisory_unlock_all();")
    env.tables(2)
    holders: list[int | None] = []
    env.db.on_call = lambda session, method: (
        holders.append(env.db.holder_pid(session.key)) if method in MIGRATION_STARTS else None
    )
    out = env.run()
    assert out.status == "applied"
    runner = env.db.sessions[0].pid
    assert holders == [runner, runner]
