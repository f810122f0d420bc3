"""Carrying out planned steps: run each migration (deadline, lock_timeout retries), record."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from patcher.core.errors import DeadlineReached, MigrationFailed
from patcher.core.models import AppliedRow, Plan, Step
from patcher.db.postgres import HistoryChange, PostgresBackend, SqlFailure
from patcher.engine.outcome import Deadline, EventSink, Outcome, RunOptions, entry, history_change
from patcher.sql.lexer import line_col
from patcher.sql.scripts import Script


def record_only(
    backend: PostgresBackend,
    the_plan: Plan,
    scripts: dict[tuple[int, str], Script],
    outcome: Outcome,
) -> None:
    backend.record([history_change(s, scripts) for s in the_plan.steps])
    outcome.entries = [entry(s, scripts, "applied") for s in the_plan.steps]
    outcome.status = "applied"
    if the_plan.request.action == "baseline":
        outcome.current_version = max(s.migration.version for s in the_plan.steps)
    else:
        rows = backend.read_history()
        outcome.current_version = max((r.version for r in rows), default=None)


def execute_steps(
    backend: PostgresBackend,
    the_plan: Plan,
    scripts: dict[tuple[int, str], Script],
    history: list[AppliedRow],
    opts: RunOptions,
    deadline: Deadline,
    emit: EventSink,
    outcome: Outcome,
) -> None:
    """Run the steps in order; stop at the first failure or when the deadline is near."""
    done_state = "applied" if the_plan.request.action == "migrate" else "reverted"
    applied = {row.version for row in history}
    unapplied = {m.version: m for m in the_plan.pending}
    remaining = list(the_plan.steps)
    outcome.status = done_state
    try:
        while remaining:
            step = remaining[0]
            m = step.migration
            script = scripts[(m.version, step.direction)]
            try:
                deadline.check(f"version {m.version}")
            except DeadlineReached as exc:
                outcome.status = "partial"
                outcome.warnings.append(f"{exc.message}; invoke again to continue")
                break
            started = time.perf_counter()
            try:
                change = history_change(step, scripts)
                elapsed = _run_step(backend, step, script, change, opts, deadline)
            except MigrationFailed as exc:
                cause = exc.__cause__
                if isinstance(cause, SqlFailure) and cause.connection_lost:
                    outcome.unlogged = (change, exc.message)
                took = int((time.perf_counter() - started) * 1000)
                failed = {**entry(step, scripts, "failed"), "duration_ms": took}
                outcome.entries.append(failed)
                emit("migration", {**{k: failed[k] for k in ("version", "direction", "state",
                                      "duration_ms")}, "error": exc.type})  # fmt: skip
                remaining.pop(0)
                raise
            remaining.pop(0)
            done = {**entry(step, scripts, done_state), "duration_ms": elapsed}
            outcome.entries.append(done)
            emit("migration", {k: done[k] for k in ("version", "direction", "state",
                                                    "duration_ms")})  # fmt: skip
            if step.direction == "up":
                applied.add(m.version)
                unapplied.pop(m.version, None)
            else:
                applied.discard(m.version)
                unapplied[m.version] = m
    finally:
        outcome.entries += [entry(s, scripts, "not_run") for s in remaining]
        outcome.current_version = max(applied, default=None)
        outcome.pending = [unapplied[v] for v in sorted(unapplied)]


def _run_step(
    backend: PostgresBackend,
    step: Step,
    script: Script,
    change: HistoryChange,
    opts: RunOptions,
    deadline: Deadline,
) -> int:
    """Run one migration with lock_timeout retries; raise MigrationFailed with its location."""
    timeout = timeout_source(opts, deadline)
    texts = script.statement_texts
    started = time.perf_counter()
    try:
        if script.transactional:
            return int(
                _with_lock_retries(lambda: backend.run_transactional(texts, change, timeout), opts)
            )
        backend.mark_dirty(change)
        for index, text in enumerate(texts):
            try:
                _with_lock_retries(partial(backend.run_statements, [text], timeout), opts)
            except SqlFailure as exc:
                exc.index = index
                raise
        elapsed = int((time.perf_counter() - started) * 1000)
        backend.finish_clean(change, elapsed)
        return elapsed
    except SqlFailure as exc:
        error = migration_failed(step, script, exc)
        if not exc.connection_lost:
            backend.log(change, outcome="failed", error=error.message,
                        duration_ms=int((time.perf_counter() - started) * 1000))  # fmt: skip
        raise error from exc


def _with_lock_retries(action: Callable[[], Any], opts: RunOptions) -> Any:
    delay = opts.lock_retry_backoff_seconds
    for attempt in range(opts.lock_retries + 1):
        try:
            return action()
        except SqlFailure as exc:
            if not exc.lock_not_available or attempt == opts.lock_retries:
                raise
        time.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")


def timeout_source(opts: RunOptions, deadline: Deadline) -> Callable[[], int | None] | None:
    if deadline.time_left_ms is None:
        return None

    def cap() -> int | None:
        budget = max(1, deadline.budget_ms() or 1)
        return min(budget, opts.statement_timeout_ms or budget)

    return cap


def migration_failed(step: Step, script: Script, exc: SqlFailure) -> MigrationFailed:
    m = step.migration
    if exc.at_commit:  # a deferred constraint, say: no statement of the file to point at
        line, column = line_col(script.text, len(script.text))
        where = f"{script.obj.name} at COMMIT, after its last statement"
    else:
        stmt = script.statements[exc.index]
        line, column = stmt.line, stmt.column
        if exc.position is not None:
            line, column = line_col(script.text, stmt.start + exc.position - 1)
        where = f"{script.obj.name} line {line}, column {column} (statement {exc.index + 1})"
    if exc.connection_lost:
        next_step = (
            "the connection was lost; PostgreSQL rolled the migration back, nothing of it "
            "remains: fix the cause and run again"
            if script.transactional
            else "the connection was lost part-way through a no-transaction script: the "
            "version is marked dirty; inspect, then run repair"
        )
    elif exc.lock_not_available:
        next_step = (
            "the statement hit lock_timeout (PATCHER_LOCK_TIMEOUT) on every retry: another "
            "session's transaction holds a conflicting lock on the table; find it in "
            "pg_stat_activity / pg_locks and run again when it is gone"
        )
    elif exc.cancelled:
        next_step = (
            "the statement was cancelled by statement_timeout (capped by the Lambda time "
            "left); make it faster, split the migration, or raise PATCHER_STATEMENT_TIMEOUT"
        )
    elif script.transactional:
        next_step = "the migration was rolled back, nothing of it remains: fix the script"
    else:
        next_step = (
            "earlier statements of this no-transaction script stay applied and the version "
            "is marked dirty: fix the cause by hand, then run repair"
        )
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
    )
