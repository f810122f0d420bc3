"""The CLI's SIGINT / SIGTERM on the fakes (issue 28 item 3): where the engine stops, what it
reports, and the audit row. The real process on a terminal: tests/integration/
test_interrupt_cli.py."""

from __future__ import annotations

import signal

from patcher.core.interrupt import Interrupt
from patcher.core.models import Request
from patcher.engine.outcome import Outcome
from patcher.engine.runner import run
from tests.fakes.database import Fault
from tests.unit.engine.kit import FAST, Env, states


def interrupted_run(
    env: Env, interrupt: Interrupt, action: str = "migrate", **fields: object
) -> Outcome:
    return run(
        Request(action=action, **fields),  # type: ignore[arg-type]
        source=env.source,
        connect=env.db.connector(request_id="req-1", invoked_by="unit"),
        options=FAST,
        interrupt=interrupt,
    )


def sigint() -> Interrupt:
    interrupt = Interrupt()
    interrupt.request(signal.SIGINT)
    return interrupt


class WithTheFault(Interrupt):
    """SIGINT that arrives as ``fault`` fires (the cancel it sends is what the fault models)."""

    def __init__(self, fault: Fault) -> None:
        super().__init__()
        self.signum, self.fault = signal.SIGINT, fault

    @property
    def requested(self) -> bool:
        return self.fault.fired > 0


def test_a_signal_before_a_migration_stops_the_run_there(env: Env) -> None:
    env.tables(1, 2)
    out = interrupted_run(env, sigint())
    assert out.status == "failed" and out.error is not None
    assert out.error.type == "Interrupted"
    assert out.error.message.startswith(
        "interrupted by SIGINT (Ctrl-C) before version 1 up started: nothing of it ran."
    )
    assert states(out) == [(1, "up", "not_run"), (2, "up", "not_run")]
    assert env.versions() == [] and not env.db.locks
    assert env.log() == [(None, "up", "interrupted")]


def test_a_signal_during_the_lock_wait_changes_nothing(env: Env) -> None:
    env.tables(1)
    holder = env.other()
    assert holder.try_lock()
    out = interrupted_run(env, sigint())
    assert out.error is not None and out.error.type == "Interrupted"
    assert "while waiting for the migration lock, held by pid" in out.error.message
    assert "nothing was run and nothing changed" in out.error.message
    assert env.versions() == [] and env.log() == []  # a first run: no log table, none made
    assert list(env.db.locks.values()) == [(holder.pid, 1)]


def test_a_signal_to_a_status_leaves_its_result(env: Env) -> None:
    env.tables(1)
    out = interrupted_run(env, sigint(), "status")
    assert (out.status, out.error) == ("planned", None)
    assert any("nothing was left to stop" in w for w in out.warnings)


def test_a_cancel_that_hit_the_lock_check_after_commit_leaves_the_version_applied(
    env: Env,
) -> None:
    """In a batch: the first item committed, the cancel ended its lock check; the next one is
    not started, and the result says version 1 is applied (as the history does)."""
    env.tables(1, 2)
    out = interrupted_run(env, WithTheFault(env.db.fail_commit(error="cancelled", committed=True)))
    assert out.error is not None and out.error.type == "Interrupted"
    assert "before version 2 up started" in out.error.message
    assert states(out) == [(1, "up", "applied"), (2, "up", "not_run")]
    assert env.versions() == [1] and out.current_version == 1
    assert env.log() == [(1, "up", "applied"), (None, "up", "interrupted")]


def test_alone_a_cancel_after_commit_is_read_from_the_history(env: Env) -> None:
    """One at a time (after a lock_timeout, here): the same, read from the history."""
    env.tables(1, 2)
    env.db.fail_statement("CREATE TABLE t1", error="lock_not_available")
    out = interrupted_run(env, WithTheFault(env.db.fail_commit(error="cancelled", committed=True)))
    assert out.error is not None and out.error.type == "Interrupted"
    assert states(out) == [(1, "up", "applied"), (2, "up", "not_run")]
    assert env.versions() == [1]
