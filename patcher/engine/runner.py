"""The one place policy lives: list, lock, read history, plan, run, record, report.

    source.list() -> build_catalog -> [up to date without the lock? read_plan.py]
    -> [lock] -> read_history -> checksums of applied files
    -> plan() -> load the scripts the plan needs -> run each step (deadline, retries) -> Outcome

Validation (source, dirty, drift, order, reversibility, script modes) all happens
before the first change. Dry runs and ``status`` take no lock and create nothing. The policy
for carrying out the steps (Lambda deadline, lock_timeout retries, error locations) is in
``steps.py``; dry-run previews (risks, verification) in ``preview.py``; the run's options,
clock and shared state in ``context.py``; what it reports in ``outcome.py``. The engine talks
to the database only through the ``MigrationBackend`` protocol (``ports.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from patcher.core.errors import PatcherError, SessionLost
from patcher.core.interrupt import Interrupt
from patcher.core.models import Catalog, HistoryChange, Request, Step
from patcher.engine.context import Deadline, EventSink, RunContext, RunOptions, no_events
from patcher.engine.interruption import finished_anyway, stopped
from patcher.engine.lock_wait import acquire_lock
from patcher.engine.outcome import Outcome, step_entry
from patcher.engine.planner import refuse_other_tools
from patcher.engine.read_plan import read_and_plan, settled, up_to_date_unlocked
from patcher.engine.status import repair_entries
from patcher.sources.base import MigrationSource
from patcher.sources.catalog import build_catalog

if TYPE_CHECKING:  # loaded at run time only when needed: an up-to-date run never loads them
    from patcher.engine.ports import Connect
    from patcher.engine.repeatables import RepeatablePlan
    from patcher.sql.scripts import ScriptSet


def run(
    request: Request,
    *,
    source: MigrationSource,
    connect: Connect,
    options: RunOptions | None = None,
    time_left_ms: Callable[[], int] | None = None,
    events: EventSink | None = None,
    interrupt: Interrupt | None = None,
) -> Outcome:
    """Carry out one request from start to end; never raises a PatcherError. ``interrupt``:
    the CLI's SIGINT / SIGTERM, which stops the run as a deadline cut would."""
    opts = options or RunOptions()
    outcome = Outcome(status="invalid")
    try:
        catalog = build_catalog(source.list())
        outcome.warnings.extend(catalog.warnings)
        backend = connect()
    except PatcherError as exc:
        return outcome.fail(exc)
    deadline = Deadline(time_left_ms, opts.time_margin_seconds)
    interrupt = interrupt or Interrupt()
    resumed: list[str] = []
    while True:
        outcome = Outcome(status="invalid", warnings=list(catalog.warnings))
        ctx = RunContext(
            request,
            backend,
            opts,
            deadline,
            events or no_events,
            outcome,
            connect=connect,
            interrupt=interrupt,
        )
        ctx.interrupt.attach(backend.cancel)  # the CLI's signal handler cancels what runs
        try:
            with backend.errors_translated():
                _run_locked(ctx, catalog, source)
            finished_anyway(ctx)
        except SessionLost as exc:
            if len(resumed) >= MAX_RESUMES or not _nothing_started(ctx):
                outcome.fail(stopped(ctx, exc))
            else:  # lost before any migration started (a failover): a new session carries on
                resumed.append(_resumed_warning(exc))
                ctx.emit("session_resumed", {"error": exc.message, "resumes": len(resumed)})
                try:
                    backend = connect()
                except PatcherError as again:
                    outcome.fail(again)
                    break
                continue
        except PatcherError as exc:
            outcome.fail(stopped(ctx, exc))
        finally:
            ctx.interrupt.attach(None)
            ctx.backend.close()  # this turn's session (a resumed turn has a new one)
        break
    outcome.warnings += resumed
    if outcome.unlogged is not None:
        _log_after_reconnect(connect, *outcome.unlogged)
    return outcome


MAX_RESUMES = 3
"""How many times a run whose session died before any migration started opens a new one (each
reach has its own connection budget: a flapping server cannot hold a run for long)."""


def _nothing_started(ctx: RunContext) -> bool:
    """Whether the lost session had run nothing a new one would need to know about: no step
    reached its executor (no entry), no baseline or repair recorded, no failure left unlogged."""
    writes_only_records = ctx.request.action in ("baseline", "repair") and not ctx.request.dry_run
    return not ctx.outcome.entries and ctx.outcome.unlogged is None and not writes_only_records


def _resumed_warning(exc: SessionLost) -> str:
    return (
        f"the database session was lost before any migration started ({exc.message.split('. ')[0]}"
        "); a new session carried the run on from the start"
    )


def _log_after_reconnect(connect: Connect, change: HistoryChange, message: str) -> None:
    """Write the audit entry a lost connection could not, on a new session (best effort)."""
    try:
        backend = connect()
    except PatcherError:
        return
    try:
        with backend.errors_translated():
            backend.log(change, outcome="failed", error=message)
    except PatcherError:
        pass
    finally:
        backend.close()


def _run_locked(ctx: RunContext, catalog: Catalog, source: MigrationSource) -> None:
    request, backend, outcome = ctx.request, ctx.backend, ctx.outcome
    writes = not request.dry_run and request.action != "status"
    needs_lock = writes or request.verify
    if up_to_date_unlocked(ctx, catalog, source):  # the common deploy: no lock (read_plan.py)
        return
    # A migrate waiting behind another run stops waiting once that run has applied everything
    # it would apply itself: it then plans without the lock and finds nothing to do.
    done = settled(request, catalog, backend) if writes and request.action == "migrate" else None
    locked = needs_lock and acquire_lock(ctx, done)
    if locked and writes:
        backend.check_writable()  # a replica or read-only target: refuse before any write
    read_and_plan(ctx, catalog, source)
    others = _other_tools(ctx)
    if needs_lock and not locked and ctx.plan.steps:  # the history moved again: wait for real
        acquire_lock(ctx, None)
        backend.check_writable()
        read_and_plan(ctx, catalog, source)
    outcome.warnings = list(ctx.plan.warnings) + others  # the plan's include the catalog's
    if not (catalog.migrations or catalog.baselines or catalog.repeatables or ctx.history):
        outcome.warnings.append(_empty_source_warning(source))
    outcome.pending = list(ctx.plan.pending)
    ctx.scripts = _load_scripts(source, ctx.plan.steps)
    if request.phase is not None:
        from patcher.engine.phase_split import apply_phase  # SPEC 11: only when asked

        if apply_phase(ctx):  # the release gate holds the contract phase: nothing runs
            outcome.status = "held"
            return
    repeatables = _plan_repeatables(ctx, catalog, source)
    outcome.warnings += _empty_script_warnings(ctx.plan.steps, ctx.scripts)
    if request.action == "status":
        due = repeatables is not None and repeatables.due
        running = any(e.state == "running" for e in outcome.entries)
        outcome.status = "planned" if ctx.plan.pending or due or running else "up_to_date"
        if ctx.plan.pending:  # the first may be a backfill part way (SPEC 12)
            from patcher.engine.backfill import status_progress

            outcome.progress = status_progress(ctx)
    elif not ctx.plan.steps:
        outcome.status = "up_to_date"
    elif request.dry_run:
        from patcher.engine.no_transaction import repair_leftovers
        from patcher.engine.preview import add_risks, verify  # previews only: not on apply

        outcome.entries = [
            step_entry(s, ctx.scripts, "planned", preview=True) for s in ctx.plan.steps
        ]
        outcome.status = "planned"
        if request.action == "repair":
            drops = repair_leftovers(ctx, source, dry_run=True)
            repair_entries(ctx, source, drops, done=False)
        add_risks(ctx)
        from patcher.engine.drift_check import flag_drifted

        flag_drifted(ctx)  # DRIFTED_OBJECT: what the scripts touch that drifted (SPEC 13)
        if request.verify:
            verify(ctx)
        if request.action == "rollback":
            from patcher.engine.data_at_risk import add_data_at_risk  # rollback previews only

            add_data_at_risk(ctx, source)  # what the down scripts would destroy
    elif request.action in ("baseline", "repair"):
        backend.ensure_tables()
        if request.action == "repair":
            from patcher.engine.no_transaction import repair_leftovers

            drops = repair_leftovers(ctx, source, dry_run=False)
        from patcher.engine.steps import record_only

        record_only(ctx)
        if request.action == "repair":
            repair_entries(ctx, source, drops, done=True)
    else:
        from patcher.engine.drift_check import warn_before_apply
        from patcher.engine.steps import execute_steps  # the executors load only to run steps

        backend.ensure_tables()  # only now: a refused run leaves no trace, not even tables
        warn_before_apply(ctx)  # the drift it applies on top of, before any change (SPEC 13)
        if request.phase == "contract":
            from patcher.engine.phase_split import execute_contract  # SPEC 11's release gate

            execute_contract(ctx)
        else:
            execute_steps(ctx)
    if repeatables is not None and repeatables.scripts:
        _repeatables(ctx, repeatables, locked or bool(needs_lock and ctx.plan.steps))


def _plan_repeatables(
    ctx: RunContext, catalog: Catalog, source: MigrationSource
) -> RepeatablePlan | None:
    """The repeatables' plan; their module loads only when the source has any."""
    if not catalog.repeatables:
        return None
    from patcher.engine.repeatables import plan_repeatables

    return plan_repeatables(ctx, catalog, source)


def _repeatables(ctx: RunContext, plan: RepeatablePlan, locked: bool) -> None:
    """Flyway R__ scripts after the versioned steps (engine/repeatables.py)."""
    from patcher.engine.repeatables import (
        preview_entries,
        redecide_under_lock,
        run_repeatables,
        status_entries,
    )

    request, outcome = ctx.request, ctx.outcome
    if request.action == "status":
        outcome.entries += status_entries(plan)
    elif not plan.due or outcome.status not in ("applied", "up_to_date", "planned"):
        return
    elif request.dry_run:
        outcome.entries += preview_entries(ctx, plan)
        outcome.status = "planned"
    else:
        if not locked:  # nothing versioned was left to wait for; these need the lock
            acquire_lock(ctx, None)
            ctx.backend.check_writable()
            plan = redecide_under_lock(ctx, plan)  # the holder may have run them meanwhile
            if not plan.due:
                return
        ctx.backend.ensure_tables()
        run_repeatables(ctx, plan)
        outcome.status = "applied"


def _other_tools(ctx: RunContext) -> list[str]:
    """Refuse (migrate) or warn about another tool's history while ours is empty."""
    if ctx.history or ctx.request.action not in ("migrate", "status", "rollback"):
        return []
    from patcher.engine.ports import foreign_port

    return refuse_other_tools(ctx.request, foreign_port(ctx.backend).other_histories())


def _load_scripts(source: MigrationSource, steps: Iterable[Step]) -> ScriptSet:
    """Fetch and check every script the plan runs or records, before anything changes."""
    wanted = {s.key: s.migration.file(s.direction) for s in steps if s.kind.reads_script}
    if not wanted:
        return {}
    from patcher.sql.scripts import load_script  # the SQL lexer loads only when scripts do

    keys = {obj.key: slot for slot, obj in wanted.items()}
    return {
        keys[obj.key]: load_script(obj, data) for obj, data in source.read_many(wanted.values())
    }


def _empty_source_warning(source: MigrationSource) -> str:
    """Nothing to run and nothing ever run: most likely the wrong directory or S3 prefix
    (issue 26 item 14), so it is not a silent ``up_to_date``."""
    return (
        f"the source {source.describe()} has no migration files and the database no history: "
        "nothing was run. Check PATCHER_SOURCE (or --source): the directory, or the S3 bucket "
        "and prefix, where the *.sql files are (an S3 prefix matches object names exactly, "
        "case included)"
    )


def _empty_script_warnings(steps: Iterable[Step], scripts: ScriptSet) -> list[str]:
    """A script with no statements runs as a no-op: legal, but often a botched upload."""
    empty = [
        scripts[s.key].obj.name for s in steps if s.kind.runs_sql and not scripts[s.key].statements
    ]
    return [
        f"{name} has no statements (empty or only comments): it is recorded as run without "
        "doing anything; if that is not what you meant, check the upload"
        for name in empty
    ]
