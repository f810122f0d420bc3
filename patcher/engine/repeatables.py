"""Repeatable scripts (Flyway ``R__<description>.sql``, SPEC 2a): after the versioned ones.

A migrate that completed every versioned step runs each repeatable whose file checksum differs
from the one it was last applied with (new ones too), in description order, each in its own
transaction with its audit row (version NULL: ``patcher/db/repeatable_log.py``); a no-transaction
one runs statement by statement, then its row. ``status`` lists every repeatable (``applied``
or ``planned``), a dry run the ones it would run, with their SQL. They are loaded and checked
with the versioned scripts, before anything changes.
"""

from __future__ import annotations

import time
from dataclasses import field

from patcher.core.errors import LockLost, MigrationFailed, StatementFailed
from patcher.core.models import Catalog, HistoryChange, LockState, Repeatable, StepKind
from patcher.core.record import mutable_record
from patcher.engine.context import RunContext
from patcher.engine.failures import failure_location
from patcher.engine.outcome import ResultEntry
from patcher.engine.snapshot_once import one_snapshot
from patcher.sources.base import MigrationSource
from patcher.sql.scripts import Script, load_script


@mutable_record
class RepeatablePlan:
    """Every repeatable with its script, and those due to run (new or changed)."""

    scripts: list[tuple[Repeatable, Script]] = field(default_factory=list)
    due: list[tuple[Repeatable, Script]] = field(default_factory=list)


def plan_repeatables(ctx: RunContext, catalog: Catalog, source: MigrationSource) -> RepeatablePlan:
    """Load every repeatable and compare its checksum with the last applied one."""
    if not catalog.repeatables or ctx.request.action not in ("migrate", "status"):
        return RepeatablePlan()
    objects = {r.obj.key: r for r in catalog.repeatables}
    loaded = [
        (objects[obj.key], load_script(obj, data))
        for obj, data in source.read_many(r.obj for r in catalog.repeatables)
    ]
    return RepeatablePlan(loaded, _due(ctx, loaded))


def redecide_under_lock(ctx: RunContext, plan: RepeatablePlan) -> RepeatablePlan:
    """The due ones again, from what is recorded now that the run holds the lock: a run that
    waited must not re-run a repeatable the lock's holder has just run (issue 26 item 8)."""
    return RepeatablePlan(plan.scripts, _due(ctx, plan.scripts))


def _due(
    ctx: RunContext, loaded: list[tuple[Repeatable, Script]]
) -> list[tuple[Repeatable, Script]]:
    recorded: dict[str, str] = getattr(ctx.backend, "repeatables", dict)()
    return [(r, s) for r, s in loaded if recorded.get(r.description) != s.checksum]


def entry(rep: Repeatable, script: Script, state: str, *, preview: bool = False) -> ResultEntry:
    return ResultEntry(
        version=None,
        description=rep.description,
        direction="up",
        state=state,
        checksum=script.checksum,
        transactional=script.transactional,
        repeatable=True,
        change=StepKind.REPEATABLE.change_text("up") if state != "applied" else None,
        sql=script.text if preview else None,
    )


def preview_entries(ctx: RunContext, plan: RepeatablePlan) -> list[ResultEntry]:
    """The due repeatables of a dry run, with their SQL and risks (as for versions)."""
    from patcher.sql.risks import analyze  # pglast loads only for previews

    sizes = ctx.preview.table_sizes()
    entries = []
    for rep, script in plan.due:
        shown = entry(rep, script, "planned", preview=True)
        risks = analyze(
            script.text,
            transactional=script.transactional,
            existing_tables=sizes,
            statements=script.statements,
        )
        shown.risks = [r.to_dict() for r in risks]
        entries.append(shown)
    return entries


def status_entries(plan: RepeatablePlan) -> list[ResultEntry]:
    due = {r.description for r, _ in plan.due}
    return [entry(r, s, "planned" if r.description in due else "applied") for r, s in plan.scripts]


def run_repeatables(ctx: RunContext, plan: RepeatablePlan) -> None:
    """Run each due repeatable with its audit row; a failure is reported and raised. Only the
    last one's write stores the schema snapshot (engine/snapshot_once.py)."""
    changes = [_change(rep, script) for rep, script in plan.due]
    ran: list[bool] = []  # one per repeatable that changed the schema (True: the last one)

    def owed() -> bool:
        return bool(ran) and not ran[-1]

    with one_snapshot(ctx, changes[-1] if changes else None, owed):
        for (rep, script), change in zip(plan.due, changes, strict=True):
            _run_one(ctx, rep, script, change, ran, last=change is changes[-1])


def _change(rep: Repeatable, script: Script) -> HistoryChange:
    return HistoryChange(
        None, rep.description, "up", script.checksum, rep.obj.fingerprint, StepKind.REPEATABLE
    )


def _run_one(
    ctx: RunContext,
    rep: Repeatable,
    script: Script,
    change: HistoryChange,
    ran: list[bool],
    *,
    last: bool,
) -> None:
    backend = ctx.backend
    ctx.deadline.check(f"repeatable {rep.obj.name}")
    started = time.perf_counter()
    try:
        if script.transactional:
            committed = backend.run_transactional(script.statement_texts, change)
            ran.append(last)
            if committed.lock is LockState.LOST:
                raise LockLost(
                    f"repeatable {rep.obj.name} released the run's advisory lock and "
                    "another session took it; it was applied, the run stopped there"
                )
        else:
            ran.append(False)  # statement by statement: a failure leaves part of it done
            backend.run_statements(script.statement_texts)
            backend.log(change, outcome="applied", duration_ms=_ms(started))
            ran[-1] = last
    except StatementFailed as exc:
        ctx.outcome.entries.append(entry(rep, script, "failed"))
        error = _failed(rep, script, exc)
        backend.log(change, outcome="failed", duration_ms=_ms(started), error=error.message)
        raise error from exc
    finally:
        backend.restore_session()
    done = entry(rep, script, "applied")
    done.duration_ms = _ms(started)
    ctx.outcome.entries.append(done)


def _failed(rep: Repeatable, script: Script, exc: StatementFailed) -> MigrationFailed:
    line, column, where = failure_location(script, exc)
    kept = (
        "it was rolled back, nothing of it remains"
        if script.transactional
        else f"it runs outside a transaction: statements 1 to {exc.index} stay applied"
    )
    return MigrationFailed(
        f"repeatable {rep.obj.name} failed at {where}: {exc.message}. The versioned migrations "
        f"before it stay applied; {kept}. Fix the script and migrate again (it runs again "
        "since its checksum was not recorded)",
        file=rep.obj.name,
        line=line,
        column=column,
        sqlstate=exc.sqlstate,
    )


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
