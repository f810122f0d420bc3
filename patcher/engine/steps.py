"""Carrying out planned steps: each migration under the deadline watchdog, with lock_timeout
retries, the lock check after it, and the COMMIT-in-doubt check when the session is lost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TypeVar

from patcher.core.errors import (
    DatabaseUnavailable,
    DeadlineExceeded,
    Interrupted,
    LockLost,
    MigrationFailed,
    PatcherError,
    StatementFailed,
)
from patcher.core.models import HistoryChange, LockState, Migration, Step
from patcher.engine.backfill import Paused
from patcher.engine.batched_steps import plan_batch, run_batch
from patcher.engine.context import RunContext, Watchdog
from patcher.engine.failures import deadline_exceeded, interrupted, migration_failed
from patcher.engine.interruption import audit, before_step, committed_anyway
from patcher.engine.lock_retry import with_lock_retries
from patcher.engine.outcome import history_change, started_fields, step_entry
from patcher.engine.snapshot_once import one_snapshot
from patcher.engine.step_signals import CommittedThenLost, Cut, StoppedAfter, check_lock, report
from patcher.sql.scripts import Script

T = TypeVar("T")


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
    """Run the steps in order, several per round trip where they can share one (``batch``);
    stop at the first failure or when the deadline is near."""
    outcome = ctx.outcome
    done_state = "applied" if ctx.plan.request.action == "migrate" else "reverted"
    applied = {row.version for row in ctx.history}
    unapplied = {m.version: m for m in ctx.plan.pending}
    remaining = list(ctx.plan.steps)
    outcome.status = done_state
    ran = 0
    steps = ctx.plan.steps
    last = history_change(steps[-1], ctx.scripts.get(steps[-1].key)) if steps else None
    moved: list[Step] = []  # committed or left dirty: the snapshot is owed unless the last is
    left_dirty: list[Step] = []  # failed part way (no-transaction): never wrote its last row

    def done(step: Step) -> None:
        nonlocal ran
        remaining.pop(0)
        ran += 1
        moved.append(step)
        _moved(step, applied, unapplied)

    def owed() -> bool:  # the last step's own write stores it, unless that step failed dirty
        return bool(moved) and (moved[-1] is not steps[-1] or moved[-1] in left_dirty)

    with one_snapshot(ctx, last, owed):  # only the last step's write stores it
        try:
            while remaining:
                step = remaining[0]
                if not _may_start(ctx, step):
                    break
                count = plan_batch(remaining, ctx.scripts, ctx.deadline.budget_ms())
                try:
                    if count:
                        ended = run_batch(ctx, remaining[:count], done_state, done, first=ran == 0)
                        if ended == "deadline":
                            break
                        if ended == "retry":  # lock_timeout: the one-at-a-time path retries it
                            _run_and_report(ctx, remaining[0], done_state, first=ran == 0, tried=1)
                            done(remaining[0])
                        continue
                    _run_and_report(ctx, step, done_state, first=ran == 0)
                except Paused as paused:  # a backfill between ranges: the next call resumes it
                    outcome.status = "partial"
                    outcome.warnings.append(paused.message)
                    break
                except Cut as cut:  # an earlier migration ran: leave this one for the next call
                    outcome.status = "partial"
                    outcome.warnings.append(f"{cut.error.message.split('. To run it')[0]}; "
                                            "invoke again to continue")  # fmt: skip
                    break
                except (MigrationFailed, Interrupted):
                    failed = remaining.pop(0)  # reported as failed, not as not_run
                    if not getattr(ctx.scripts.get(failed.key), "transactional", True):
                        moved.append(failed)  # left dirty, part of it done: the snapshot is owed
                        left_dirty.append(failed)
                    raise
                except StoppedAfter as stopped:
                    moved.append(remaining[0])
                    _moved(remaining.pop(0), applied, unapplied)
                    raise stopped.error from None
                done(step)
        finally:
            outcome.entries += [step_entry(s, ctx.scripts, "not_run") for s in remaining]
            outcome.current_version = max(applied, default=None)
            outcome.pending = [unapplied[v] for v in sorted(unapplied)]


def _may_start(ctx: RunContext, step: Step) -> bool:
    """Whether the deadline leaves room to start ``step``; if not, the run is partial. A
    signal to the CLI stops the run here (Interrupted)."""
    before_step(ctx, step)
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


def _run_and_report(
    ctx: RunContext, step: Step, done_state: str, *, first: bool, tried: int = 0
) -> None:
    """Run one step and add its entry (and event); a failure is reported, then re-raised.
    ``tried``: attempts a batch already made that hit lock_timeout (they count as retries)."""
    script = ctx.scripts[step.key]
    change = history_change(step, script)
    ctx.emit("migration_started", started_fields(step, script))
    started = time.perf_counter()
    try:
        with ctx.watchdog() as dog, _bookkeeping_guard(ctx, script):
            elapsed, lock = _run_step(ctx, step, script, change, dog, first=first, tried=tried)
    except _BookkeepingLost:
        from patcher.engine.no_transaction import lost_during

        finished, error = lost_during(ctx, step)
        if finished:
            report(ctx, step, done_state, started)
        else:
            report(ctx, step, "failed", started, error=error.type)
        if finished:
            raise StoppedAfter(error) from None
        raise error from None
    except CommittedThenLost:
        report(ctx, step, done_state, started)
        raise StoppedAfter(
            DatabaseUnavailable(
                f"the connection was lost while the COMMIT of version {step.migration.version} "
                "was in flight; a new session read the history: it committed, and it is recorded "
                f"as {done_state}. The run stopped there (the lock went with the session): run "
                "again to continue"
            )
        ) from None
    except Interrupted as exc:
        report(ctx, step, "failed", started, error=exc.type)
        raise
    except (MigrationFailed, Cut) as exc:
        error = exc.error if isinstance(exc, Cut) else exc
        if not isinstance(exc, Cut):
            report(ctx, step, "failed", started, error=error.type)
        cause = error.__cause__
        if isinstance(cause, StatementFailed) and cause.connection_lost and not cause.at_commit:
            ctx.outcome.unlogged = (change, error.message)
        raise
    report(ctx, step, done_state, started, took=elapsed)
    try:
        check_lock(ctx, step, lock)
    except LockLost as exc:
        raise StoppedAfter(exc) from None


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


def _run_step(
    ctx: RunContext,
    step: Step,
    script: Script,
    change: HistoryChange,
    dog: Watchdog,
    *,
    first: bool,
    tried: int = 0,
) -> tuple[int, LockState]:
    """Run one migration with lock_timeout retries; raise MigrationFailed with its location."""
    backend, opts = ctx.backend, ctx.options
    if tried:  # the batch's attempt was the first: back off, then the retries left
        time.sleep(opts.lock_retry_backoff_seconds)
        opts = replace(
            opts,
            lock_retries=opts.lock_retries - tried,
            lock_retry_backoff_seconds=opts.lock_retry_backoff_seconds * 2,
        )
    if script.backfill is not None and step.direction == "up":
        from patcher.engine.backfill import run_backfill

        return run_backfill(ctx, step, script, change, dog)
    texts = script.statement_texts
    started = time.perf_counter()
    try:
        if not script.transactional:
            from patcher.engine.no_transaction import (
                run_no_transaction,  # no-transaction scripts only
            )

            return run_no_transaction(ctx, step, script, change, dog)
        done = with_lock_retries(lambda: backend.run_transactional(texts, change, dog.stop), opts)
        return done.elapsed_ms, done.lock
    except StatementFailed as exc:
        took = int((time.perf_counter() - started) * 1000)
        if exc.cancelled and ctx.interrupt.requested and not exc.connection_lost:
            if exc.at_commit and committed_anyway(ctx, step):  # the cancel hit the lock check
                return took, LockState.HELD if backend.holds_lock() else LockState.LOST
            stop = interrupted(step, script, exc, ctx.interrupt.name)
            audit(ctx, change, stop.message, took)
            raise stop from exc
        error: MigrationFailed = migration_failed(step, script, exc)
        if exc.cancelled and dog.fired:
            error = deadline_exceeded(step, script, exc, took / 1000)
        elif exc.at_commit and exc.connection_lost:
            error = _in_doubt(ctx, step, script, exc, change)
        if not exc.connection_lost:
            backend.log(change, outcome="failed", error=error.message, duration_ms=took)
        if isinstance(error, DeadlineExceeded) and script.transactional and not first:
            raise Cut(error) from exc
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
        raise CommittedThenLost()
    return MigrationFailed(
        f"{base.message.split('. ')[0]}. The connection was lost while COMMIT was in flight; "
        "a new session read the history: it did not commit, nothing of it remains. Run again",
        **base.details,
    )
