"""What a failed migration becomes: its location in the file, the next step, and the error.

``migration_failed`` maps a backend's ``StatementFailed`` to the ``MigrationFailed`` (or
``DeadlineExceeded``) a result reports, naming the version, file, line, column and what to do.
"""

from __future__ import annotations

from typing import Any

from patcher.core.errors import DeadlineExceeded, Interrupted, MigrationFailed, StatementFailed
from patcher.core.models import Step
from patcher.engine.lock_retry import commits_inside
from patcher.sql.lexer import line_col
from patcher.sql.scripts import Script

LONG_RUN_PATH = (
    "the state machine's long-run path runs one version as an ECS task "
    "(`patcher migrate --target {version} --json`, docs/fleets.md), or "
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
    """What a failed no-transaction script left: which statements stay in effect."""
    if exc.index == 0:
        return "none of its statements had completed, but the version is marked dirty"
    dirty = "and the version is marked dirty"
    if exc.index == 1:
        return f"its first statement ran and stays in effect, {dirty}"
    return f"its statements 1 to {exc.index} ran and stay in effect, {dirty}"


def repair_does(direction: str) -> str:
    """What ``repair`` does to a version whose no-transaction script of ``direction`` failed
    (planner: a dirty ``up`` row is deleted, a dirty ``down`` row is marked clean)."""
    if direction == "up":
        return (
            "it removes the version's history row, the version becomes pending again, and the "
            "next migrate re-runs the whole up script from its first statement"
        )
    return (
        "it clears the dirty mark, the version is applied again (migrate will not re-run its "
        "up script), and the next rollback re-runs the whole down script from its first "
        "statement"
    )


def _head(script: Script, index: int) -> str:
    """How a statement begins: its first line, at most 60 characters."""
    line = script.statements[index].text[:200].split("\n", 1)[0].strip()
    return line if len(line) <= 60 else f"{line[:57]}..."


def _committed_inside(script: Script, exc: StatementFailed) -> str | None:
    """For a no-transaction CALL or DO that started: what may have committed (SPEC 7 item 5).

    A cut the client made before sending (cancelled, no SQLSTATE, session alive) never
    started it."""
    if script.transactional or exc.at_commit:
        return None
    command = commits_inside(script.statements[exc.index].text)
    if command is None or (exc.cancelled and exc.sqlstate is None and not exc.connection_lost):
        return None
    return (
        f"statement {exc.index + 1} ({_head(script, exc.index)}) may have committed work "
        f"before it failed (a {command} can COMMIT inside: a procedure or DO block with "
        "COMMIT), so it was not retried: running it again could do that work twice"
    )


def _cause(script: Script, exc: StatementFailed, retried: bool) -> str:
    """Why the statement failed and what to look at, for the kinds that have a usual cause."""
    if exc.connection_lost:
        if script.transactional:
            return "the connection was lost; PostgreSQL rolled the migration back"
        return "the connection was lost part-way through a no-transaction script"
    if exc.lock_not_available:
        every = " on every retry" if retried else ""
        return (
            f"the statement hit lock_timeout (PATCHER_LOCK_TIMEOUT){every}: another "
            "session's transaction holds a conflicting lock on a table or row it needs; find "
            "it in pg_stat_activity / pg_locks"
        )
    if exc.cancelled:
        return (
            "the statement was cancelled by statement_timeout (PATCHER_STATEMENT_TIMEOUT or "
            "the script's own); make it faster, split the migration, or raise the timeout"
        )
    return ""


def _next_step(direction: str, script: Script, exc: StatementFailed) -> str:
    """What the person reading the failure should do about it."""
    inside = _committed_inside(script, exc)
    cause = _cause(script, exc, retried=inside is None)
    if script.transactional:
        if exc.connection_lost:
            return f"{cause}, nothing of it remains: fix the cause and run again"
        if exc.lock_not_available:
            return f"{cause} and run again when it is gone"
        return cause or "the migration was rolled back, nothing of it remains: fix the script"
    parts = [cause] if cause else []
    if inside is not None:
        parts.append(inside)
    parts.append(_no_transaction_state(exc))
    todo = "inspect what it left" + (" and what it committed" if inside else "")
    todo += (
        ", make it safe to run again (skip the work already done) or finish it by hand"
        if inside
        else ", fix the cause by hand"
    )
    return "; ".join(parts) + f". To go on: {todo}, then run repair ({repair_does(direction)})"


def migration_failed(
    step: Step, script: Script, exc: StatementFailed, *, extra: str = ""
) -> MigrationFailed:
    """The MigrationFailed a failed statement becomes: version, file, line, column, next step."""
    m = step.migration
    line, column, where = failure_location(script, exc)
    next_step = _next_step(step.direction, script, exc)
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
        inside = _committed_inside(script, exc)
        state = (
            f"It is a no-transaction script: {inside + '; ' if inside else ''}"
            f"{_no_transaction_state(exc)}. Look at what it left (an INVALID index from "
            f"CREATE INDEX CONCURRENTLY: drop it), run repair ({repair_does(step.direction)}), "
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


def interrupted(step: Step, script: Script, exc: StatementFailed, by: str) -> Interrupted:
    """A migration the CLI's signal (``by``: "SIGINT (Ctrl-C)", "SIGTERM") stopped, as the
    deadline cuts one: rolled back when transactional, left dirty when not (SPEC 4)."""
    m = step.migration
    line, column, where = failure_location(script, exc)
    if script.transactional:
        state = (
            "It was rolled back, nothing of it remains, and the migration lock was released. "
            "Run again to apply it"
            if step.direction == "up"
            else "It was rolled back, nothing of it remains (the version is still applied), "
            "and the migration lock was released. Run the rollback again"
        )
    else:
        inside = _committed_inside(script, exc)
        state = (
            f"It is a no-transaction script: {inside + '; ' if inside else ''}"
            f"{_no_transaction_state(exc)}; the migration lock was released. Look at what it "
            "left (an INVALID index from CREATE INDEX CONCURRENTLY: drop it), run repair "
            f"({repair_does(step.direction)}), then run again"
        )
    return Interrupted(
        f"version {m.version} {step.direction} was interrupted by {by} at {where}. "
        f"{state}.{exc.note}",
        **_details(step, script, exc, line, column),
    )
