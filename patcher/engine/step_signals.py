"""What the two ways of running steps share (one at a time in ``steps.py``, several per round
trip in ``batched_steps.py``): the internal signals between them and the runner loop, the
per-migration entry and event, and the lock check after a migration."""

from __future__ import annotations

import time

from patcher.core.errors import DeadlineExceeded, LockLost, PatcherError
from patcher.core.models import LockState, Step
from patcher.engine.context import RunContext
from patcher.engine.outcome import step_entry


class Cut(Exception):
    """Internal: the deadline cut a transactional migration, which was rolled back."""

    def __init__(self, error: DeadlineExceeded) -> None:
        super().__init__(error.message)
        self.error = error


class CommittedThenLost(Exception):
    """Internal: the session was lost after COMMIT, and the history shows it committed."""


class StoppedAfter(Exception):
    """Internal: the step completed and is recorded, then the run must stop with ``error``."""

    def __init__(self, error: PatcherError) -> None:
        super().__init__(error.message)
        self.error = error


def report(
    ctx: RunContext,
    step: Step,
    state: str,
    started: float,
    *,
    took: int | None = None,
    error: str | None = None,
) -> None:
    entry = step_entry(step, ctx.scripts, state)
    entry.duration_ms = int((time.perf_counter() - started) * 1000) if took is None else took
    ctx.outcome.entries.append(entry)
    fields = entry.event_fields()
    ctx.emit("migration", {**fields, "error": error} if error else fields)


def check_lock(ctx: RunContext, step: Step, lock: LockState) -> None:
    """After a migration: it may have released the run's lock (SPEC 7 item 3)."""
    if lock is LockState.HELD:
        return
    v = step.migration.version
    if lock is LockState.RETAKEN:
        ctx.outcome.warnings.append(
            f"version {v} released the run's advisory lock (pg_advisory_unlock*, DISCARD ALL); "
            "it was free and was taken back before anything else ran: remove that call"
        )
        return
    holder = ctx.backend.lock_holder()
    who = holder.describe() if holder else "another session"
    raise LockLost(
        f"version {v} released the run's advisory lock (pg_advisory_unlock_all(), "
        f"pg_advisory_unlock or DISCARD ALL in the script) and {who} took it. Version {v} is "
        "recorded; the run stopped and started nothing more. Ship the script's fix as a new "
        "version and run again once that session is done",
        version=v,
        holder_pid=holder.pid if holder else None,
        holder_application_name=holder.application_name if holder else None,
    )
