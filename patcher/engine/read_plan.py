"""Reading the history and planning against it, with or without the lock.

A migrate first reads and plans without the lock (``up_to_date_unlocked``): when every version
it would apply is applied, clean, and its files match, it reports ``up_to_date`` and never
touches the lock, the common deploy. This is as safe as the wait's ``settled`` early exit it
generalises: the history is read in one statement (one snapshot) and the run changes nothing,
so it is the same answer a run ordered just before any concurrent one would give; a file that
changed is refused as before. Anything else (something to apply, a refusal, a dirty or running
row, repeatables, a phase, verify) goes the locked way and is decided again under the lock,
reusing the checksums already computed (``RunContext.checksums``): a file is read once a run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from patcher.core.errors import PatcherError
from patcher.core.models import MAX_VERSION as MAX
from patcher.core.models import Catalog, Request
from patcher.engine.applied import applied_checksums
from patcher.engine.planner import plan
from patcher.engine.status import (
    Modes,
    clean_current,
    repair_running,
    running_holder,
    status_entries,
    status_pending,
)
from patcher.sources.base import MigrationSource

if TYPE_CHECKING:
    from patcher.engine.context import RunContext
    from patcher.engine.outcome import Outcome
    from patcher.engine.ports import MigrationBackend


def up_to_date_unlocked(ctx: RunContext, catalog: Catalog, source: MigrationSource) -> bool:
    """Whether a migrate found, without the lock, nothing to do: then its outcome is set
    (``up_to_date``). False, leaving the outcome to the locked path, in every other case."""
    request = ctx.request
    plain = request.action == "migrate" and not (request.dry_run or request.verify)
    if not plain or request.phase is not None or catalog.repeatables:
        return False
    ctx.backend.check_writable()  # known from the connect probe: a replica still refuses
    outcome = ctx.outcome
    try:
        read_and_plan(ctx, catalog, source)
    except PatcherError as exc:
        if exc.category != "refused":
            raise
        _forget_unlocked_read(outcome)
        return False  # refused on what it read unlocked: decided again under the lock
    if ctx.plan.steps or not ctx.history:
        _forget_unlocked_read(outcome)
        return False
    outcome.warnings = list(ctx.plan.warnings)
    outcome.pending = list(ctx.plan.pending)
    outcome.status = "up_to_date"
    return True


def _forget_unlocked_read(outcome: Outcome) -> None:
    """The result reports only what the run read under the lock: a run that then waits in vain
    (``locked``) or fails before reading again says the version is unknown, not what another
    run may have changed while it waited."""
    outcome.history_read, outcome.current_version, outcome.pending = False, None, []


def read_and_plan(ctx: RunContext, catalog: Catalog, source: MigrationSource) -> None:
    """Read the history into the context and plan the request against it."""
    ctx.history = history = ctx.backend.read_history()
    outcome, status = ctx.outcome, ctx.request.action == "status"
    outcome.history_read, outcome.current_version = True, clean_current(history)
    running = running_holder(ctx, history)
    modes = Modes() if status else None  # the mode of each file read for its checksum
    sums, baselined = applied_checksums(source, catalog, history, modes, ctx.checksums)
    outcome.pending = status_pending(catalog, history, baselined)  # also when refused below
    if modes is not None:  # listed even when validation refuses the state below
        outcome.entries = status_entries(source, catalog, history, baselined, running, modes)
    ctx.plan = plan(ctx.request, catalog, history, sums, baselined, running)
    if running is not None and ctx.request.action == "repair":
        repair_running(ctx, running)


def settled(request: Request, catalog: Catalog, backend: MigrationBackend) -> Callable[[], bool]:
    """Whether every version this migrate would apply is applied, and none is dirty."""
    target = MAX if request.target is None else request.target
    wanted = [m.version for m in catalog.migrations if m.version <= target]
    top = max(wanted, default=0)
    return lambda: backend.applied_count(top) == len(wanted)
