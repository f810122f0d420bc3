"""Carrying out planned steps: run each migration (deadline, lock_timeout retries), record."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from patcher.core.errors import DeadlineReached, MigrationFailed, StatementFailed
from patcher.core.models import HistoryChange, Step
from patcher.engine.context import RunContext, RunOptions
from patcher.engine.outcome import history_change, step_entry
from patcher.sql.lexer import line_col
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
    """Run the steps in order; stop at the first failure or when the deadline is near."""
    outcome = ctx.outcome
    done_state = "applied" if ctx.plan.request.action == "migrate" else "reverted"
    applied = {row.version for row in ctx.history}
    unapplied = {m.version: m for m in ctx.plan.pending}
    remaining = list(ctx.plan.steps)
    outcome.status = done_state
    try:
        while remaining:
            step = remaining[0]
            m = step.migration
            try:
                ctx.deadline.check(f"version {m.version}")
            except DeadlineReached as exc:
                outcome.status = "partial"
                outcome.warnings.append(f"{exc.message}; invoke again to continue")
                break
            try:
                _run_and_report(ctx, step, done_state)
            except MigrationFailed:
                remaining.pop(0)  # reported as failed, not as not_run
                raise
            remaining.pop(0)
            if step.direction == "up":
                applied.add(m.version)
                unapplied.pop(m.version, None)
            else:
                applied.discard(m.version)
                unapplied[m.version] = m
    finally:
        outcome.entries += [step_entry(s, ctx.scripts, "not_run") for s in remaining]
        outcome.current_version = max(applied, default=None)
        outcome.pending = [unapplied[v] for v in sorted(unapplied)]


def _run_and_report(ctx: RunContext, step: Step, done_state: str) -> None:
    """Run one step and add its entry (and event); a failure is reported, then re-raised."""
    script = ctx.scripts[step.key]
    change = history_change(step, script)
    started = time.perf_counter()
    try:
        elapsed = _run_step(ctx, step, script, change)
    except MigrationFailed as exc:
        cause = exc.__cause__
        if isinstance(cause, StatementFailed) and cause.connection_lost:
            ctx.outcome.unlogged = (change, exc.message)
        failed = step_entry(step, ctx.scripts, "failed")
        failed.duration_ms = int((time.perf_counter() - started) * 1000)
        ctx.outcome.entries.append(failed)
        ctx.emit("migration", {**failed.event_fields(), "error": exc.type})
        raise
    done = step_entry(step, ctx.scripts, done_state)
    done.duration_ms = elapsed
    ctx.outcome.entries.append(done)
    ctx.emit("migration", done.event_fields())


def _run_step(ctx: RunContext, step: Step, script: Script, change: HistoryChange) -> int:
    """Run one migration with lock_timeout retries; raise MigrationFailed with its location."""
    backend, opts = ctx.backend, ctx.options
    timeout = ctx.statement_cap()
    texts = script.statement_texts
    started = time.perf_counter()
    try:
        if script.transactional:
            return with_lock_retries(
                lambda: backend.run_transactional(texts, change, timeout), opts
            )
        backend.mark_dirty(change)
        for index, text in enumerate(texts):
            try:
                with_lock_retries(partial(backend.run_statements, [text], timeout), opts)
            except StatementFailed as exc:
                exc.index = index
                raise
        elapsed = int((time.perf_counter() - started) * 1000)
        backend.finish_clean(change, elapsed)
        return elapsed
    except StatementFailed as exc:
        error = migration_failed(step, script, exc)
        if not exc.connection_lost:
            took = int((time.perf_counter() - started) * 1000)
            backend.log(change, outcome="failed", error=error.message, duration_ms=took)
        raise error from exc


def with_lock_retries(action: Callable[[], T], opts: RunOptions) -> T:
    """Run ``action``; when it hits lock_timeout, retry with doubling back-off."""
    delay = opts.lock_retry_backoff_seconds
    for attempt in range(opts.lock_retries + 1):
        try:
            return action()
        except StatementFailed as exc:
            if not exc.lock_not_available or attempt == opts.lock_retries:
                raise
        time.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")


def failure_location(script: Script, exc: StatementFailed) -> tuple[int, int, str]:
    """Line, column and a phrase naming where in ``script`` the failure happened."""
    if exc.at_commit:  # a deferred constraint, say: no statement of the file to point at
        line, column = line_col(script.text, len(script.text))
        return line, column, f"{script.obj.name} at COMMIT, after its last statement"
    stmt = script.statements[exc.index]
    line, column = stmt.line, stmt.column
    if exc.position is not None:
        line, column = line_col(script.text, stmt.start + exc.position - 1)
    where = f"{script.obj.name} line {line}, column {column} (statement {exc.index + 1})"
    return line, column, where


def _next_step(script: Script, exc: StatementFailed) -> str:
    """What the person reading the failure should do about it."""
    if exc.connection_lost:
        if script.transactional:
            return (
                "the connection was lost; PostgreSQL rolled the migration back, nothing of it "
                "remains: fix the cause and run again"
            )
        return (
            "the connection was lost part-way through a no-transaction script: the "
            "version is marked dirty; inspect, then run repair"
        )
    if exc.lock_not_available:
        return (
            "the statement hit lock_timeout (PATCHER_LOCK_TIMEOUT) on every retry: another "
            "session's transaction holds a conflicting lock on the table; find it in "
            "pg_stat_activity / pg_locks and run again when it is gone"
        )
    if exc.cancelled:
        return (
            "the statement was cancelled by statement_timeout (capped by the Lambda time "
            "left); make it faster, split the migration, or raise PATCHER_STATEMENT_TIMEOUT"
        )
    if script.transactional:
        return "the migration was rolled back, nothing of it remains: fix the script"
    return (
        "earlier statements of this no-transaction script stay applied and the version "
        "is marked dirty: fix the cause by hand, then run repair"
    )


def migration_failed(step: Step, script: Script, exc: StatementFailed) -> MigrationFailed:
    """The MigrationFailed a failed statement becomes: version, file, line, column, next step."""
    m = step.migration
    line, column, where = failure_location(script, exc)
    next_step = _next_step(script, exc)
    detail = f" ({exc.detail})" if exc.detail else ""
    hint = f" Hint: {exc.hint}" if exc.hint else ""
    return MigrationFailed(
        f"version {m.version} {step.direction} failed at {where}: {exc.message}{detail}."
        f"{hint} {next_step[0].upper()}{next_step[1:]}",
        version=m.version,
        file=script.obj.name,
        line=line,
        column=column,
        statement=None if exc.at_commit else exc.index + 1,
        sqlstate=exc.sqlstate,
        detail=exc.detail,  # also apart, so that logs can leave it out (it can quote rows)
    )
