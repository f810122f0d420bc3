"""Batched apply and rollback: consecutive transactional migrations, several per round trip.

``plan_batch`` says how many of the next steps go in one message (``MigrationBackend.run_batch``):
each is still its own transaction with its history change, session restore and lock check, so
what a batch changes is only how many round trips the run makes, and the results are those of
running them one at a time.

Which scripts are batched: transactional ones whose text closes (no unterminated string,
quoted identifier, comment or dollar body: the rest of the message would be read as part of
it) and that fit in ``MAX_CHARS``. No-transaction scripts, lock_timeout retries and ``verify``
keep their own paths. Scripts that may release the lock (``pg_advisory_unlock*``) are batched
too: the backend gives them the exact lock check, which stops the batch on the server when the
lock was taken by another session. A script that changes its role or settings is batched too:
the session restore runs in each migration's COMMIT message before its history change and the
lock check, exactly as on the one-at-a-time path.

The deadline: the first migration of a batch passed the engine's start check; the backend's
server-side guard refuses to start any later one once ``start_within_ms`` have passed since the
message arrived: the time left before the start rule of SPEC section 7 would refuse it, minus
``TRANSIT_MS`` for the message's way to the server. With too little left for that, no batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Literal

from patcher.core.batch_items import BatchDone, BatchItem
from patcher.core.errors import (
    DatabaseUnavailable,
    DeadlineExceeded,
    LockLost,
    MigrationFailed,
    PatcherError,
    StatementFailed,
)
from patcher.core.models import HistoryChange, Step, StepKind
from patcher.engine.context import START_SLACK_MS, RunContext
from patcher.engine.failures import deadline_exceeded, interrupted, migration_failed
from patcher.engine.interruption import audit
from patcher.engine.outcome import history_change, started_fields
from patcher.engine.step_signals import Cut, StoppedAfter, check_lock, report
from patcher.sql.lexer import split_statements
from patcher.sql.scripts import Script, ScriptSet

MAX_ITEMS = 200
"""At most this many migrations per message."""
MAX_CHARS = 1_000_000
"""At most this much SQL text per message (the server parses a whole message at once); a
larger script runs alone, statement by statement."""
TRANSIT_MS = 100
"""Allowance for the batch's way to the server, taken off the time its migrations may start in."""

_PROBE = "SELECT 1"

Ended = Literal["done", "deadline", "retry"]
"""How a batch ended: all of it ran or failed as reported; the server-side deadline guard
stopped it; or its next step hit lock_timeout and goes to the one-at-a-time path's retries."""


def closes(script: Script) -> bool:
    """Whether nothing the script leaves open (a string, comment, body) would swallow the
    text sent after it: a probe statement after its last statement must split off alone."""
    tail = script.text[script.statements[-1].start :] if script.statements else script.text
    parts = list(split_statements(f"{tail}\n;\n{_PROBE}"))
    return bool(parts) and parts[-1].text == _PROBE


def batchable(step: Step, script: Script | None) -> bool:
    """Whether ``step`` can ride in a batch (see the module docstring)."""
    return (
        script is not None
        and step.kind is StepKind.RUN
        and script.transactional
        and script.backfill is None
        and len(script.text) <= MAX_CHARS
        and closes(script)
    )


def plan_batch(
    steps: Sequence[Step],
    scripts: ScriptSet,
    budget_ms: int | None,
    *,
    max_items: int = MAX_ITEMS,
    max_chars: int = MAX_CHARS,
) -> int:
    """How many of ``steps``, from the first, go in the next batch; 0: run the first alone.

    ``budget_ms``: the deadline's budget (``Deadline.budget_ms``), None without a deadline."""
    if budget_ms is not None and start_within(budget_ms) <= 0:
        return 1 if steps and batchable(steps[0], scripts.get(steps[0].key)) else 0
    count = size = 0
    for step in steps[:max_items]:
        script = scripts.get(step.key)
        if not batchable(step, script) or script is None:
            break
        size += len(script.text)
        if count and size > max_chars:
            break
        count += 1
    return count


def start_within(budget_ms: int) -> int:
    """How long after the batch arrives its later migrations may still start."""
    return budget_ms - START_SLACK_MS - TRANSIT_MS


def run_batch(
    ctx: RunContext,
    steps: Sequence[Step],
    done_state: str,
    done: Callable[[Step], None],
    *,
    first: bool,
) -> Ended:
    """Run ``steps`` in one round trip, report each, call ``done`` for each that completed;
    a failure is reported and raised as the one-at-a-time path raises it. ``first``: no
    migration ran before in this invocation (a deadline cut is then DeadlineExceeded)."""
    scripts = [ctx.scripts[s.key] for s in steps]
    changes = [history_change(s, sc) for s, sc in zip(steps, scripts, strict=True)]
    items = [
        BatchItem(sc.text, [st.start for st in sc.statements], sc.statement_texts, change)
        for sc, change in zip(scripts, changes, strict=True)
    ]
    budget = ctx.deadline.budget_ms()
    _announce(ctx, steps, scripts)
    started = time.perf_counter()
    within = None if budget is None else int(start_within(budget) / ctx.deadline.rate())
    with ctx.watchdog() as dog:
        try:
            result = ctx.backend.run_batch(items, within, dog.stop)
        except StatementFailed as exc:  # a lost session, raised rather than reported
            result = BatchDone(failure=exc)
    fired = dog.fired
    for k, committed in enumerate(result.committed):
        step = steps[k]
        report(ctx, step, done_state, started, took=committed.elapsed_ms)
        try:
            check_lock(ctx, step, committed.lock)
        except LockLost as exc:
            raise StoppedAfter(exc) from None
        done(step)
    n = len(result.committed)
    if result.failure is None:
        if result.deadline and n < len(steps) and ctx.interrupt.requested:
            return "done"  # a cancel hit a lock check after COMMIT: the next start check stops
        if result.deadline and n < len(steps):
            _stopped_by_deadline(ctx, steps[n])
            return "deadline"
        return "done"
    failure = result.failure
    if failure.connection_lost and failure.at_commit:  # only the history can tell
        _lost(ctx, steps[n:], changes[n:], failure, done_state, done)
    if failure.lock_not_available and ctx.options.lock_retries > 0:
        return "retry"
    step, script, change = steps[n], scripts[n], changes[n]
    took = int((time.perf_counter() - started) * 1000)
    if failure.cancelled and ctx.interrupt.requested and not failure.connection_lost:
        stop = interrupted(step, script, failure, ctx.interrupt.name)
        audit(ctx, change, stop.message, took)
        report(ctx, step, "failed", started, error=stop.type)
        raise stop from failure
    error: MigrationFailed = migration_failed(step, script, failure)
    if failure.cancelled and fired:
        error = deadline_exceeded(step, script, failure, took / 1000)
    if failure.connection_lost:  # it was running its statements: rolled back by the server
        ctx.outcome.unlogged = (change, error.message)
    else:
        ctx.backend.log(change, outcome="failed", error=error.message, duration_ms=took)
    if isinstance(error, DeadlineExceeded) and not (first and n == 0):
        raise Cut(error) from failure
    report(ctx, step, "failed", started, error=error.type)
    raise error from failure


def _announce(ctx: RunContext, steps: Sequence[Step], scripts: Sequence[Script]) -> None:
    """A watcher's start event: the migration's own when it goes alone, else the batch's (when
    each of several starts is known only to the server; each one's end is reported)."""
    if len(steps) == 1:
        ctx.emit("migration_started", started_fields(steps[0], scripts[0]))
        return
    first, last = steps[0].migration.version, steps[-1].migration.version
    names = [[s.migration.version, s.migration.description] for s in steps]
    fields = {"count": len(steps), "direction": steps[0].direction, "first": first, "last": last}
    ctx.emit("batch_started", {**fields, "migrations": names})


def _stopped_by_deadline(ctx: RunContext, step: Step) -> None:
    ctx.outcome.status = "partial"
    ctx.outcome.warnings.append(
        f"stopped before version {step.migration.version}: the Lambda deadline is near; "
        "invoke again to continue"
    )


def _recorded(ctx: RunContext) -> set[int] | None:
    """The history's versions as a new session reads them; None when none can be opened."""
    try:
        if ctx.connect is None:
            raise DatabaseUnavailable("no way to open a new session")
        other = ctx.connect()
        try:
            with other.errors_translated():
                return {row.version for row in other.read_history()}
        finally:
            other.close()
    except PatcherError:
        return None


def _lost(
    ctx: RunContext,
    steps: Sequence[Step],
    changes: Sequence[HistoryChange],
    exc: StatementFailed,
    done_state: str,
    done: Callable[[Step], None],
) -> None:
    """The session died during the batch: a new session reads which of the rest committed."""
    started = time.perf_counter()
    recorded = _recorded(ctx)
    first, script = steps[0], ctx.scripts[steps[0].key]
    base = migration_failed(first, script, exc)
    if recorded is None:
        versions = ", ".join(str(s.migration.version) for s in steps)
        report(ctx, first, "failed", started, error="MigrationFailed")
        raise MigrationFailed(
            f"the connection was lost during a batch of migrations (versions {versions}), and "
            "no new session could be opened to read the history: whether they committed is "
            "unknown. Run status to see; nothing else was started",
            **base.details,
        ) from exc
    for k, (step, change) in enumerate(zip(steps, changes, strict=True)):
        if (step.migration.version in recorded) != (step.direction == "up"):
            report(ctx, step, "failed", started, error="MigrationFailed")
            ctx.outcome.unlogged = (change, "connection lost")
            raise MigrationFailed(
                f"version {step.migration.version} {step.direction} failed: the connection was "
                "lost while it ran or while its COMMIT was in flight; a new session read the "
                "history: it did not commit, nothing of it remains"
                + (" (versions before it in the same batch committed)" if k else "")
                + ". Run again",
                **migration_failed(step, ctx.scripts[step.key], exc).details,
            ) from exc
        report(ctx, step, done_state, started)
        if k == len(steps) - 1:
            raise StoppedAfter(
                DatabaseUnavailable(
                    f"the connection was lost after the COMMIT of version "
                    f"{step.migration.version}; a new session read the history: it committed, "
                    f"and it is recorded as {done_state}. The run stopped there (the lock went "
                    "with the session): run again to continue"
                )
            )
        done(step)


__all__ = ["BatchDone", "plan_batch", "run_batch"]
