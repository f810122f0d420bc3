"""What a failed migration becomes: its location in the file, the next step, and the error.

``migration_failed`` maps a backend's ``StatementFailed`` to the ``MigrationFailed`` (or
``DeadlineExceeded``) a result reports, naming the version, file, line, column and what to do.
"""

from __future__ import annotations

from typing import Any

from patcher.core.errors import DeadlineExceeded, MigrationFailed, StatementFailed
from patcher.core.models import Step
from patcher.sql.lexer import line_col
from patcher.sql.scripts import Script

LONG_RUN_PATH = (
    "the state machine's long-run path runs one version as an ECS task "
    "(`patcher migrate --target {version} --json`, README: Fleets and long migrations), or "
    "raise the function timeout"
)


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


def _no_transaction_state(exc: StatementFailed) -> str:
    """What a failed no-transaction script left: which statements stay applied."""
    if exc.index == 0:
        return "none of its statements had completed, but the version is marked dirty"
    return (
        f"its statements 1 to {exc.index} stay applied and the version is marked dirty"
        if exc.index > 1
        else "its first statement stays applied and the version is marked dirty"
    )


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
            "the statement was cancelled by statement_timeout (PATCHER_STATEMENT_TIMEOUT or "
            "the script's own); make it faster, split the migration, or raise the timeout"
        )
    if script.transactional:
        return "the migration was rolled back, nothing of it remains: fix the script"
    return (
        f"{_no_transaction_state(exc)}: fix the cause by hand, then run repair (the version "
        "becomes pending again and the next migrate re-runs the whole script)"
    )


def migration_failed(
    step: Step, script: Script, exc: StatementFailed, *, extra: str = ""
) -> MigrationFailed:
    """The MigrationFailed a failed statement becomes: version, file, line, column, next step."""
    m = step.migration
    line, column, where = failure_location(script, exc)
    next_step = _next_step(script, exc)
    detail = f" ({exc.detail})" if exc.detail else ""
    hint = f" Hint: {exc.hint}" if exc.hint else ""
    return MigrationFailed(
        f"version {m.version} {step.direction} failed at {where}: {exc.message}{detail}."
        f"{hint} {next_step[0].upper()}{next_step[1:]}{exc.note}{extra}",
        **_details(step, script, exc, line, column),
    )


def deadline_exceeded(
    step: Step, script: Script, exc: StatementFailed, seconds: float
) -> DeadlineExceeded:
    """A migration the Lambda deadline cut when it could not be left for a next invocation."""
    m = step.migration
    line, column, where = failure_location(script, exc)
    path = LONG_RUN_PATH.format(version=m.version)
    if script.transactional:
        state = "It was rolled back, nothing of it remains"
        why = f"it had the whole invocation to itself ({seconds:.0f} s) and could not finish"
    else:
        state = (
            f"It is a no-transaction script: {_no_transaction_state(exc)}. Look at what it "
            "left (an INVALID index from CREATE INDEX CONCURRENTLY: drop it), run repair, "
            "then run it where it has time"
        )
        why = f"it ran out of the invocation's time ({seconds:.0f} s)"
    return DeadlineExceeded(
        f"version {m.version} {step.direction} was cut by the Lambda deadline at {where}: {why}. "
        f"{state}.{exc.note} To run it: {path}",
        **_details(step, script, exc, line, column),
    )


def _details(
    step: Step, script: Script, exc: StatementFailed, line: int, column: int
) -> dict[str, Any]:
    """What a result's error carries beside the message: where, and what the server said."""
    return {
        "version": step.migration.version,
        "file": script.obj.name,
        "line": line,
        "column": column,
        "statement": None if exc.at_commit else exc.index + 1,
        "sqlstate": exc.sqlstate,
        "detail": exc.detail,  # also apart, so that logs can leave it out (it can quote rows)
    }
