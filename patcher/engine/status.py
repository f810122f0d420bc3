"""What ``status`` (and the lockless dry runs) show of the history, as it truly stands (issue 28
items 1 and 2): each applied version with its file's real transactional mode; a version whose
no-transaction script started and did not finish is ``dirty`` (not counted in the current
version), or ``running`` while a run still holds the migration lock, named like the lock wait
names it (pid, application name, since when). A running script is not something to repair:
the texts here say it runs and to wait, or to look at the session that holds the lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from patcher.core.errors import PatcherError
from patcher.core.models import (
    AppliedRow,
    Catalog,
    Direction,
    LockHolder,
    Migration,
    ScriptKey,
    SourceObject,
    StepKind,
)
from patcher.engine.baselines import available_and_pending
from patcher.engine.outcome import ResultEntry, applied_entry
from patcher.sources.base import MigrationSource

if TYPE_CHECKING:
    from patcher.engine.context import RunContext


def lockless(ctx: RunContext) -> bool:
    """Whether the run reads the history without holding the lock (status, a dry run without
    verify): only then can a dirty version's script still be running in another run."""
    request = ctx.request
    return request.action == "status" or (request.dry_run and not request.verify)


def running_holder(ctx: RunContext, history: Sequence[AppliedRow]) -> LockHolder | None:
    """Who holds the migration lock while the history has a dirty version, read by a lockless
    run; None otherwise. A dirty mark under a held lock is a script still running: every run
    that takes the lock refuses a dirty history at once (repair, which clears it, excepted)."""
    if not lockless(ctx) or not any(row.dirty for row in history):
        return None
    return ctx.backend.lock_holder()


def clean_current(history: Iterable[AppliedRow]) -> int | None:
    """The current version: the newest one applied and not dirty."""
    return max((row.version for row in history if not row.dirty), default=None)


class Modes(dict[str, bool | None]):
    """Files' transactional modes by key, taken from bytes already read (``applied_checksums``
    reads the files it cannot prove unchanged: ``status`` does not read them twice)."""

    def __call__(self, obj: SourceObject, data: bytes) -> None:
        from patcher.sql.scripts import script_mode

        try:
            self[obj.key] = script_mode(obj, data)
        except PatcherError:
            self[obj.key] = None  # not decodable, no section: the run that reads it says why


def status_entries(
    source: MigrationSource,
    catalog: Catalog,
    history: Sequence[AppliedRow],
    baselined: frozenset[int],
    holder: LockHolder | None,
    known: Modes,
) -> list[ResultEntry]:
    """Each history row as ``status`` lists it: state and the transactional mode of the file
    it ran (the down's, for a dirty down); ``known``: the modes of the files read already."""
    available = available_and_pending(catalog, {r.version: r for r in history}, baselined, None)[0]
    files = {
        row.version: available[row.version].file(_direction(row))
        for row in history
        if row.version in available
    }
    modes = {**known, **file_modes(source, (o for o in files.values() if o.key not in known))}
    entries = []
    for row in history:
        entry = applied_entry(row)
        obj = files.get(row.version)
        entry.transactional = modes.get(obj.key) if obj is not None else None
        if row.dirty:
            entry.direction = _direction(row)
            entry.state = "running" if holder is not None else "dirty"
            entry.duration_ms = None  # not finished: the row holds no duration
            if holder is not None:
                entry.holder = holder_fields(holder)
        entries.append(entry)
    return entries


def status_pending(
    catalog: Catalog, history: Sequence[AppliedRow], baselined: frozenset[int]
) -> list[Migration]:
    """The versions not in the history, for a ``status`` whose plan refused the history (a
    dirty version...): what is pending is still known."""
    applied = {row.version: row for row in history}
    return list(available_and_pending(catalog, applied, baselined, None)[1])


def file_modes(source: MigrationSource, objs: Iterable[SourceObject]) -> Modes:
    """Each file's transactional mode by key (None for a file that is not a readable script)."""
    modes = Modes()
    wanted = list({obj.key: obj for obj in objs}.values())
    for obj, data in source.read_many(wanted) if wanted else ():
        modes(obj, data)
    return modes


def step_modes(
    source: MigrationSource, steps: Iterable[tuple[ScriptKey, SourceObject]]
) -> dict[ScriptKey, bool]:
    """The transactional mode of the files of steps that do not load their script (repair)."""
    pairs = list(steps)
    modes = file_modes(source, (obj for _, obj in pairs))
    return {key: mode for key, obj in pairs if (mode := modes.get(obj.key)) is not None}


def holder_fields(holder: LockHolder) -> dict[str, Any]:
    """A running entry's ``holder``: what the lock wait reports of the session (``locked``)."""
    return {"pid": holder.pid, "application_name": holder.application_name, "since": holder.since}


def running_text(row: AppliedRow, holder: LockHolder) -> str:
    """What a lockless run says of a version whose script is running: wait, or look at the
    session that holds the lock; never to repair it."""
    return (
        f"version {row.version} ({row.description}) is running: its no-transaction "
        f"{_direction(row)} script started and the run holding the migration lock has not "
        f"finished it: {holder.describe()}. Wait for that run to finish, then look again (the "
        "version then shows applied, or dirty if it failed). If that session is stuck, see what "
        f"it runs (SELECT state, query FROM pg_stat_activity WHERE pid = {holder.pid}) and end "
        f"it with SELECT pg_terminate_backend({holder.pid})"
    )


def _direction(row: AppliedRow) -> Direction:
    return (row.dirty_direction or "up") if row.dirty else "up"


def repair_entries(
    ctx: RunContext, source: MigrationSource, drops: Mapping[int, list[str]], *, done: bool
) -> None:
    """A repair's entries as what they change (``drops``: the INVALID indexes dropped first,
    by version): the file's real mode, and (``done``) a cleared dirty ``up`` as ``not_run``
    and pending again (its history row is gone), not applied."""
    steps = ctx.plan.steps
    modes = step_modes(source, ((s.key, s.migration.file(s.direction)) for s in steps))
    outcome = ctx.outcome
    for step, entry in zip(steps, outcome.entries, strict=True):
        entry.transactional = modes.get(step.key)
        if step.kind is StepKind.CLEAR_DIRTY:
            dropped = drops.get(step.migration.version)
            first = f"drops INVALID index(es) {', '.join(dropped)}, then " if dropped else ""
            entry.change = first + _CLEARED[step.direction]
        if done and step.kind is StepKind.CLEAR_DIRTY and step.direction == "up":
            entry.state = "not_run"
            outcome.pending.append(step.migration)
    outcome.pending.sort(key=lambda m: m.version)


_CLEARED = {  # what repair does to a dirty version, by its unfinished script's direction
    "up": "removes the history row the unfinished up script left: the version is pending again",
    "down": "clears the dirty mark of the unfinished down script: the version is applied again",
}


def repair_running(ctx: RunContext, holder: LockHolder) -> None:
    """A repair dry run while a dirty version's script runs: no step for it (the real repair
    waits for the lock, then finds it finished), and a warning saying it runs."""
    running = {r.version: r for r in ctx.history if r.dirty}
    plan = ctx.plan
    kept = tuple(
        s
        for s in plan.steps
        if not (s.kind is StepKind.CLEAR_DIRTY and s.migration.version in running)
    )
    if len(kept) == len(plan.steps):
        return
    notes = tuple(running_text(row, holder) for row in running.values())
    ctx.plan = replace(plan, steps=kept, warnings=(*notes, *plan.warnings))
