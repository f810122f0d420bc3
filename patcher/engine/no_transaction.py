"""No-transaction scripts: statement by statement under a dirty mark, and the concurrent
indexes they build (SPEC 7 item 4).

A statement that hits lock_timeout is retried, except a ``CALL`` or ``DO`` (SPEC 7 item 5): a
procedure or DO block can COMMIT inside, so once one started, what it did before the failure
may be committed and a second run could do it twice. The failure says so (engine/failures.py).

A ``CREATE INDEX CONCURRENTLY`` that fails after its first phase leaves an INVALID index.
Before a lock_timeout retry the leftover the failed attempt created is dropped (never an index
that existed before the script); the version is never recorded as applied while an index the
script names or created is INVALID; a failure names every INVALID index left and the statement
that drops it.
"""

from __future__ import annotations

import re
import time
from functools import partial
from typing import Any

from patcher.core.errors import (
    DatabaseUnavailable,
    MigrationFailed,
    PatcherError,
    StatementFailed,
)
from patcher.core.models import AppliedRow, HistoryChange, LockState, Step, StepKind
from patcher.core.terms import terms
from patcher.engine.context import RunContext, Watchdog
from patcher.engine.failures import repair_does
from patcher.engine.lock_retry import commits_inside, with_lock_retries
from patcher.engine.ports import MigrationBackend
from patcher.sources.base import MigrationSource
from patcher.sql.scripts import Script, load_script

_CONCURRENT_INDEX = re.compile(
    r"^\s*create\s+(?:unique\s+)?index\s+concurrently\s+(?:if\s+not\s+exists\s+)?"
    r'((?:"[^"]+"|[\w$]+)(?:\s*\.\s*(?:"[^"]+"|[\w$]+))?)',
    re.IGNORECASE,
)


def run_no_transaction(
    ctx: RunContext, step: Step, script: Script, change: HistoryChange, dog: Watchdog
) -> tuple[int, LockState]:
    """Run a no-transaction script; return its duration and the lock's state after it."""
    backend = ctx.backend
    before = {i.name for i in backend.indexes()}
    named = _named_indexes(script)
    backend.mark_dirty(change)
    started = time.perf_counter()
    for index, text in enumerate(script.statement_texts):
        ctx.emit("statement_started", _statement_fields(step, script, index))
        attempt = partial(backend.run_statements, [text], dog.stop)
        try:
            if commits_inside(text):  # SPEC 7 item 5: it may have committed; never again
                attempt()
            else:
                retry = partial(_drop_leftovers, backend, before)
                with_lock_retries(attempt, ctx.options, before_retry=retry)
        except StatementFailed as exc:
            exc.index = index
            if not exc.connection_lost:
                backend.restore_session()  # the script's SETs must not reach the audit row
                exc.note = _leftover_note(_invalid(backend, before, named))
            raise
    elapsed = int((time.perf_counter() - started) * 1000)
    invalid = _invalid(backend, before, named)
    if invalid:
        backend.restore_session()
        error = _left_invalid(step, script, invalid)
        backend.log(change, outcome="failed", error=error.message, duration_ms=elapsed)
        raise error
    return elapsed, backend.finish_clean(change, elapsed)


def _statement_fields(step: Step, script: Script, index: int) -> dict[str, Any]:
    """The ``statement_started`` event: which statement of the script, where, how it begins."""
    statement = script.statements[index]
    head = statement.text[:200].split("\n", 1)[0].strip()
    return {
        "version": step.migration.version,
        "direction": step.direction,
        "index": index,
        "count": len(script.statements),
        "line": statement.line,
        "text": head[:80],
    }


def _named_indexes(script: Script) -> set[str]:
    """The bare names of the indexes the script builds concurrently."""
    names = set()
    for text in script.statement_texts:
        match = _CONCURRENT_INDEX.match(text)
        if match:
            names.add(_bare(match[1]))
    return names


def _bare(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip().strip('"')


def _invalid(backend: MigrationBackend, before: set[str], named: set[str]) -> list[str]:
    """INVALID indexes the script created, or that carry a name it builds."""
    return sorted(
        i.name
        for i in backend.indexes()
        if not i.valid and (i.name not in before or _bare(i.name) in named)
    )


def _drop_leftovers(backend: MigrationBackend, before: set[str]) -> bool:
    """Before a retry: drop the INVALID indexes the failed attempt created (none older).

    False when a drop could not get its lock (the blocking transactions still run): then no
    retry is made, and the failure names the leftover."""
    dropped = [
        backend.drop_index(i.name)
        for i in backend.indexes()
        if not i.valid and i.name not in before
    ]
    return all(dropped)


def _drops(names: list[str]) -> str:
    return "; ".join(f"DROP INDEX CONCURRENTLY IF EXISTS {n}" for n in names)


def _leftover_note(invalid: list[str]) -> str:
    if not invalid:
        return ""
    return (
        f" It left INVALID index(es) {', '.join(invalid)}: drop them before repair with "
        f"{_drops(invalid)}"
    )


def _left_invalid(step: Step, script: Script, invalid: list[str]) -> MigrationFailed:
    v = step.migration.version
    then = (
        "run repair and migrate again to build them anew"
        if step.direction == "up"
        else f"run repair ({repair_does('down')})"
    )
    return MigrationFailed(
        f"version {v} {step.direction} ({script.obj.name}) ran to its end but INVALID "
        f"index(es) {', '.join(invalid)} remain (a failed concurrent build, kept by IF NOT "
        "EXISTS): the version is not recorded as applied and stays marked dirty. Drop them "
        f"({_drops(invalid)}), then {then}",
        version=v,
        file=script.obj.name,
        invalid_indexes=invalid,
    )


def repair_leftovers(
    ctx: RunContext, source: MigrationSource, *, dry_run: bool
) -> dict[int, list[str]]:
    """Repair of a crashed no-transaction ``up``: the INVALID indexes its crashed attempt left
    under the names it builds are dropped, so the re-run builds them anew (IF NOT EXISTS would
    keep them). A dry run says it will; a drop that cannot get its lock says what to run.
    Returns the indexes dropped (or, dry, to drop) by version."""
    drops: dict[int, list[str]] = {}
    for step in ctx.plan.steps:
        if step.kind is not StepKind.CLEAR_DIRTY or step.direction != "up":
            continue
        ((obj, data),) = source.read_many([step.migration.up])
        script = load_script(obj, data)
        named = _named_indexes(script)
        if script.transactional or not named:
            continue
        v = step.migration.version
        for i in ctx.backend.indexes():
            if i.valid or _bare(i.name) not in named:
                continue
            if dry_run:
                note = f"repair will drop INVALID index {i.name}, left by version {v}'s crash"
                drops.setdefault(v, []).append(i.name)
            elif ctx.backend.drop_index(i.name):
                note = f"repair dropped INVALID index {i.name}, left by version {v}'s crash"
                drops.setdefault(v, []).append(i.name)
            else:
                note = (
                    f"INVALID index {i.name} (left by version {v}) could not be dropped now (a "
                    f"transaction holds it): run {_drops([i.name])} before migrating"
                )
            ctx.outcome.warnings.append(note)
    return drops


def lost_during(ctx: RunContext, step: Step) -> tuple[bool, PatcherError]:
    """The session died in a no-transaction script's bookkeeping (the dirty mark, the index
    check, the clearing of the mark): a new session reads where the version really stands.

    Returns whether the version finished (it is recorded) and the error that ends the run."""
    v, up = step.migration.version, step.direction == "up"
    where = f"the session was lost during no-transaction version {v} {step.direction}"
    try:
        row = _history_row(ctx, v)
    except PatcherError:
        return False, MigrationFailed(
            f"{where}, and no new session could be opened to read the history: whether it "
            "started or finished is unknown. Run status; if the version is dirty, look at what "
            "it left, then run repair",
            version=v,
        )
    if row is not None and row.dirty:
        return False, MigrationFailed(
            f"{where}: the history shows it marked dirty. Look at what it left (an INVALID "
            "index: repair drops the ones it names), then run repair "
            f"({terms().action('repair', dry_run=True)} first, to see what it does) and "
            "run again",
            version=v,
        )
    if (row is not None) == up:  # up: its row is there and clean; down: its row is gone
        done = "applied" if up else "reverted"
        return True, DatabaseUnavailable(
            f"{where} after it finished: a new session read the history, it is recorded as "
            f"{done}. The run stopped there (the lock went with the session): run again"
        )
    return False, MigrationFailed(
        f"{where} before its start was recorded: nothing of it ran. Run again", version=v
    )


def _history_row(ctx: RunContext, version: int) -> AppliedRow | None:
    """The version's history row, read on a new session; raises PatcherError without one."""
    if ctx.connect is None:
        raise DatabaseUnavailable("no way to open a new session")
    other = ctx.connect()
    try:
        with other.errors_translated():
            return next((r for r in other.read_history() if r.version == version), None)
    finally:
        other.close()
