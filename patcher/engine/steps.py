"""Carrying out planned steps: each migration under the deadline watchdog, with lock_timeout
retries, the lock check after it, and the COMMIT-in-doubt check when the session is lost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from patcher.core.errors import (
    DatabaseUnavailable,
    DeadlineExceeded,
    LockLost,
    MigrationFailed,
    PatcherError,
    StatementFailed,
)
from patcher.core.models import HistoryChange, LockState, Migration, Step
from patcher.engine.context import RunContext, Watchdog
from patcher.engine.failures import deadline_exceeded, migration_failed
from patcher.engine.notx import lost_during, run_no_transaction
from patcher.engine.outcome import history_change, started_fields, step_entry
from patcher.engine.retry import with_lock_retries
from patcher.sql.scripts import Script

T = TypeVar("T")


class _Cut(Exception):
    """Internal: the deadline cut a transactional migration, which was rolled back."""

    def __init__(self, error: DeadlineExceeded) -> None:
        super().__init__(error.message)
        self.error = error


class _CommittedThenLost(Exception):
    """Internal: the session was lost after COMMIT, and the history shows it committed."""


class _StoppedAfter(Exception):
    """Internal: the step completed and is recorded, then the run must stop with ``error``."""

    def __init__(self, error: PatcherError) -> None:
        super().__init__(error.message)
        self.error = error


def record_only(ctx: RunContext) -> None:
    """Baseline and repair: history changes that run no SQL, in one transaction."""
    steps, outcome = ctx.plan.steps, ctx.outcome
    ctx.backend.record([history_change(s, ctx.scripts.get(s.key)) for s in steps])
    outcome.entries = [step_entry(s, ctx.scripts, "applied") for s in steps]
    outcome.status = "applied"
    if ctx.plan.request.action == "baseline":
        outcome.current_version = max(s.migration.version for s in steps)
    else:
        rows = ctx.backend.read_history()
        outcome.current_version = max((r.version for r in rows), default=None)


def execute_steps(ctx: RunContext) -> None:
    """Run the steps in order; stop at the first failure or when the deadline is near."""
    outcome = ctx.outcome
    done_state = "applied" if ctx.plan.request.action == "migrate" else "reverted"
    applied = {row.version for row in ctx.history}
    unapplied = {m.version: m for m in ctx.plan.pending}
    remaining = list(ctx.plan.steps)
    outcome.status = done_state
    ran = 0
    try:
        while remaining:
            step = remaining[0]
            if not _may_start(ctx, step):
                break
            try:
                _run_and_report(ctx, step, done_state, first=ran == 0)
            except _Cut as cut:  # an earlier migration ran: leave this one for the next call
                outcome.status = "partial"
                outcome.warnings.append(f"{cut.error.message.split('. To run it')[0]}; "
                                        "invoke again to continue")  # fmt: skip
                break
            except MigrationFailed:
                remaining.pop(0)  # reported as failed, not as not_run
                raise
            except _StoppedAfter as stopped:
                remaining.pop(0)
                _moved(step, applied, unapplied)
                raise stopped.error from None
            remaining.pop(0)
            ran += 1
            _moved(step, applied, unapplied)
    finally:
        outcome.entries += [step_entry(s, ctx.scripts, "not_run") for s in remaining]
        outcome.current_version = max(applied, default=None)
        outcome.pending = [unapplied[v] for v in sorted(unapplied)]


def _may_start(ctx: RunContext, step: Step) -> bool:
    """Whether the deadline leaves room to start ``step``; if not, the run is partial."""
    if ctx.deadline.budget_ms() is None:
        return True
    try:
        ctx.deadline.check(f"version {step.migration.version}")
    except PatcherError as exc:
        ctx.outcome.status = "partial"
        ctx.outcome.warnings.append(f"{exc.message}; invoke again to continue")
        return False
    return True


def _moved(step: Step, applied: set[int], unapplied: dict[int, Migration]) -> None:
    m = step.migration
    if step.direction == "up":
        applied.add(m.version)
        unapplied.pop(m.version, None)
    else:
        applied.discard(m.version)
        unapplied[m.version] = m


def _run_and_report(ctx: RunContext, step: Step, done_state: str, *, first: bool) -> None:
    """Run one step and add its entry (and event); a failure is reported, then re-raised."""
    script = ctx.scripts[step.key]
    change = history_change(step, script)
    ctx.emit("migration_started", started_fields(step, script))
    started = time.perf_counter()
    try:
        with ctx.watchdog() as dog, _bookkeeping_guard(ctx, script):
            elapsed, lock = _run_step(ctx, step, script, change, dog, first=first)
    except _BookkeepingLost:
        finished, error = lost_during(ctx, step)
        if finished:
            _report(ctx, step, done_state, started)
        else:
            _report(ctx, step, "failed", started, error=error.type)
        if finished:
            raise _StoppedAfter(error) from None
        raise error from None
    except _CommittedThenLost:
        _report(ctx, step, done_state, started)
        raise _StoppedAfter(
            DatabaseUnavailable(
                f"the connection was lost while the COMMIT of version {step.migration.version} "
                "was in flight; a new session read the history: it committed, and it is recorded "
                f"as {done_state}. The run stopped there (the lock went with the session): run "
                "again to continue"
            )
        ) from None
    except (MigrationFailed, _Cut) as exc:
        error = exc.error if isinstance(exc, _Cut) else exc
        if not isinstance(exc, _Cut):
            _report(ctx, step, "failed", started, error=error.type)
        cause = error.__cause__
        if isinstance(cause, StatementFailed) and cause.connection_lost and not cause.at_commit:
            ctx.outcome.unlogged = (change, error.message)
        raise
    _report(ctx, step, done_state, started, took=elapsed)
    try:
        _check_lock(ctx, step, lock)
    except LockLost as exc:
        raise _StoppedAfter(exc) from None


class _BookkeepingLost(Exception):
    """Internal: the session died in a no-transaction script's bookkeeping."""


@contextmanager
def _bookkeeping_guard(ctx: RunContext, script: Script) -> Iterator[None]:
    """For a no-transaction script, a lost session (outside its statements, whose failures
    are StatementFailed) becomes _BookkeepingLost: the engine then reads where it stands."""
    if script.transactional:
        yield
        return
    try:
        with ctx.backend.errors_translated():
            yield
    except DatabaseUnavailable as exc:
        raise _BookkeepingLost() from exc


def _report(
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


def _check_lock(ctx: RunContext, step: Step, lock: LockState) -> None:
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


def _run_step(
    ctx: RunContext,
    step: Step,
    script: Script,
    change: HistoryChange,
    dog: Watchdog,
    *,
    first: bool,
) -> tuple[int, LockState]:
    """Run one migration with lock_timeout retries; raise MigrationFailed with its location."""
    backend, opts = ctx.backend, ctx.options
    texts = script.statement_texts
    started = time.perf_counter()
    try:
        if not script.transactional:
            return run_no_transaction(ctx, step, script, change, dog)
        done = with_lock_retries(lambda: backend.run_transactional(texts, change, dog.stop), opts)
        return done.elapsed_ms, done.lock
    except StatementFailed as exc:
        took = int((time.perf_counter() - started) * 1000)
        error: MigrationFailed = migration_failed(step, script, exc)
        if exc.cancelled and dog.fired:
            error = deadline_exceeded(step, script, exc, took / 1000)
        elif exc.at_commit and exc.connection_lost:
            error = _in_doubt(ctx, step, script, exc, change)
        if not exc.connection_lost:
            backend.log(change, outcome="failed", error=error.message, duration_ms=took)
        if isinstance(error, DeadlineExceeded) and script.transactional and not first:
            raise _Cut(error) from exc
        raise error from exc


def _in_doubt(
    ctx: RunContext, step: Step, script: Script, exc: StatementFailed, change: HistoryChange
) -> MigrationFailed:
    """The session died with COMMIT in flight: a new session reads whether it committed."""
    base = migration_failed(step, script, exc)
    committed: bool | None = None
    try:
        if ctx.connect is None:
            raise DatabaseUnavailable("no way to open a new session")
        other = ctx.connect()
        try:
            with other.errors_translated():
                recorded = {row.version for row in other.read_history()}
                committed = (step.migration.version in recorded) == (step.direction == "up")
                if not committed:
                    other.log(change, outcome="failed", error="connection lost at COMMIT")
        finally:
            other.close()
    except PatcherError:
        pass
    if committed is None:
        return MigrationFailed(
            f"the connection was lost while the COMMIT of version {step.migration.version} "
            "was in flight, and no new session could be opened to read the history: whether "
            "it committed is unknown. Run status to see; nothing else was started",
            **base.details,
        )
    if committed:
        raise _CommittedThenLost()
    return MigrationFailed(
        f"{base.message.split('. ')[0]}. The connection was lost while COMMIT was in flight; "
        "a new session read the history: it did not commit, nothing of it remains. Run again",
        **base.details,
    )
