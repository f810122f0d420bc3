"""The pure planner: available migrations + history + request -> steps. No I/O here.

Validation happens here, before anything changes, in this order: dirty state, missing versions,
drift (checksums), order (the request's shape was checked when it was built: ``Request``).
``repair`` is the one action that plans around dirty rows and drift instead of refusing them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from patcher.core.errors import (
    ChecksumMismatch,
    ConfigError,
    DirtyDatabase,
    InvalidRequest,
    InvalidSource,
    Irreversible,
    MissingMigration,
    OutOfOrder,
)
from patcher.core.models import (
    AppliedRow,
    Catalog,
    LockHolder,
    Migration,
    Plan,
    Request,
    Step,
    StepKind,
)
from patcher.core.terms import terms
from patcher.engine.baselines import available_and_pending


def plan(
    request: Request,
    catalog: Catalog,
    history: Sequence[AppliedRow],
    checksums: Mapping[int, str],
    baselined: frozenset[int] = frozenset(),
    running: LockHolder | None = None,
) -> Plan:
    """Decide what ``request`` does. ``checksums`` holds the source's current checksum of each
    applied version's up script (the runner reads only what it cannot prove unchanged);
    ``baselined``: the applied versions whose row was applied from a Flyway B file;
    ``running``: who holds the lock while a dirty version's script still runs (lockless runs)."""
    applied = {row.version: row for row in history}
    current = max(applied) if applied else None
    target = request.target if request.action == "migrate" else None
    available, pending = available_and_pending(catalog, applied, baselined, target)
    warnings = list(catalog.warnings)

    _refuse_version_zero(history)
    if request.action == "repair":
        return _plan_repair(request, available, history, checksums, current, pending, warnings)
    if running is None:
        _refuse_dirty(history)
    elif request.action != "status":  # status lists it as running; a dry run cannot plan yet
        _refuse_running(history, running)
    _refuse_missing(history, available)
    _refuse_drift(history, available, checksums)
    if request.action == "baseline":
        return _plan_baseline(request, catalog, history)
    if request.action in ("migrate", "status"):
        _refuse_out_of_order(pending, current)
    if request.action == "status":
        if running is not None:
            from patcher.engine.status import running_text

            warnings += [running_text(row, running) for row in history if row.dirty]
        return Plan(request, (), current, pending, tuple(warnings))
    if request.action == "migrate":
        todo = tuple(m for m in pending if target is None or m.version <= target)
        if target is not None and current is not None and target < current:
            warnings.append(
                f"target {target} is below the current version {current}; "
                f"migrate never reverts: use rollback with {terms().option('target', target)}"
            )
        steps = tuple(Step(m, "up") for m in todo)
        return Plan(request, steps, current, pending, tuple(warnings))
    return _plan_rollback(request, available, history, current, pending, warnings)


def _plan_rollback(
    request: Request,
    available: Mapping[int, Migration],
    history: Sequence[AppliedRow],
    current: int | None,
    pending: tuple[Migration, ...],
    warnings: list[str],
) -> Plan:
    newest_first = sorted((row.version for row in history), reverse=True)
    if request.target is not None:
        versions = [v for v in newest_first if v > request.target]
    else:
        count = request.steps or 1
        if request.steps is not None and count > len(newest_first):
            raise InvalidRequest(
                f"{terms().option('steps', count)} is more than the {len(newest_first)} "
                f"applied version(s); use {terms().option('target', 0)} to revert everything"
            )
        versions = newest_first[:count]
    if not versions:
        warnings.append("nothing to roll back")
    blocked = [v for v in versions if not available[v].reversible]
    if blocked:
        names = ", ".join(f"{v} ({available[v].up.name})" for v in blocked)
        raise Irreversible(
            f"the rollback would cross irreversible version(s) {names}: they have no .down.sql; "
            "nothing was reverted. Roll back to a target at or above the newest of them, or add "
            "the missing down script",
            version=max(blocked),
        )
    steps = tuple(Step(available[v], "down") for v in versions)
    return Plan(request, steps, current, pending, tuple(warnings))


def _plan_baseline(request: Request, catalog: Catalog, history: Sequence[AppliedRow]) -> Plan:
    if history:
        raise InvalidRequest(
            f"baseline needs an empty history, but {len(history)} version(s) are recorded "
            f"(newest {max(r.version for r in history)}); nothing was changed"
        )
    target = request.target or 0
    chosen = [m for m in catalog.migrations if m.version <= target]
    if not chosen:
        raise InvalidRequest(f"no migration at or below target {target} to baseline")
    pending = tuple(m for m in catalog.migrations if m.version > target)
    steps = tuple(Step(m, "up", kind=StepKind.BASELINE) for m in chosen)
    return Plan(request, steps, None, pending, catalog.warnings)


def _plan_repair(
    request: Request,
    available: Mapping[int, Migration],
    history: Sequence[AppliedRow],
    checksums: Mapping[int, str],
    current: int | None,
    pending: tuple[Migration, ...],
    warnings: list[str],
) -> Plan:
    steps: list[Step] = []
    for row in history:
        migration = available.get(row.version)
        if migration is None:
            warnings.append(
                f"version {row.version} ({row.description}) is applied but missing from the "
                "source; repair cannot fix that: restore the file"
            )
            continue
        if row.dirty:
            steps.append(Step(migration, row.dirty_direction or "up", kind=StepKind.CLEAR_DIRTY))
        elif checksums.get(row.version, row.checksum) != row.checksum:
            steps.append(
                Step(migration, "up", kind=StepKind.RECHECKSUM, checksum=checksums[row.version])
            )
    if not steps:
        warnings.append("nothing to repair: no dirty version and no changed file")
    return Plan(request, tuple(steps), current, pending, tuple(warnings))


def _refuse_dirty(history: Sequence[AppliedRow]) -> None:
    dirty = [row for row in history if row.dirty]
    if not dirty:
        return
    row = dirty[0]
    direction = row.dirty_direction or "up"
    if direction == "up":
        repair_does = (
            "Repair will remove its history row: the version becomes pending, and the next "
            "migrate re-runs the whole up script from its first statement. So first undo what "
            "it half-did, or make the script safe to run again (IF NOT EXISTS; and drop an "
            "INVALID index it left, which IF NOT EXISTS would keep)"
        )
    else:
        repair_does = (
            "Repair will clear the mark: the version is applied again, and the next rollback "
            "re-runs the whole down script from its first statement. So first restore what it "
            "half-undid, or make the down script safe to run again (IF EXISTS)"
        )
    raise DirtyDatabase(
        f"version {row.version} ({row.description}) started a no-transaction {direction} "
        "script that did not finish, so the database may be half-changed. Inspect what it "
        "left (for CREATE INDEX CONCURRENTLY: an INVALID index, SELECT indexrelid::regclass "
        f"FROM pg_index WHERE NOT indisvalid). {repair_does}; then run repair: "
        f"{terms().action('repair', dry_run=True)} to see what it will do, then "
        f"{terms().action('repair')}",
        version=row.version,
    )


def _refuse_running(history: Sequence[AppliedRow], holder: LockHolder) -> None:
    from patcher.engine.status import running_text

    row = next(row for row in history if row.dirty)
    raise DirtyDatabase(
        f"{running_text(row, holder)}. A dry run plans against a finished history: run it again "
        "once that run is over",
        version=row.version,
    )


def _refuse_version_zero(history: Sequence[AppliedRow]) -> None:
    """A history row 0 (applied before SPEC 2 refused version 0): say what to do, for every
    action, rather than plan around a version that no target can roll back."""
    zero = next((row for row in history if row.version == 0), None)
    if zero is not None:
        raise InvalidSource(
            f"the history has version 0 ({zero.description}) applied, and versions start at "
            "1 (target 0 means 'before every version', so version 0 could never be rolled "
            "back). Rename its file to a free version of 1 or more and move the history row "
            "with it: UPDATE <schema>.<table> SET version = NEW WHERE version = 0 (PATCHER_SCHEMA "
            "and PATCHER_TABLE); then run again. Nothing was changed",
            version=0,
        )


def _refuse_missing(history: Sequence[AppliedRow], available: Mapping[int, Migration]) -> None:
    missing = [row for row in history if row.version not in available]
    if missing:
        names = ", ".join(f"{r.version} ({r.description})" for r in missing)
        raise MissingMigration(
            f"applied version(s) {names} are missing from the source; restore the files "
            "(they are needed to verify and roll back) before running anything",
            version=missing[0].version,
        )


def _refuse_drift(
    history: Sequence[AppliedRow],
    available: Mapping[int, Migration],
    checksums: Mapping[int, str],
) -> None:
    changed = [row for row in history if checksums.get(row.version, row.checksum) != row.checksum]
    if changed:
        names = ", ".join(available[r.version].up.name for r in changed)
        raise ChecksumMismatch(
            f"applied migration file(s) changed since they were applied: {names}. Restore the "
            "original files and ship the change as a new version; if the edit is harmless "
            "(comments, formatting), run repair to record the new checksums",
            version=changed[0].version,
        )


def _refuse_out_of_order(pending: Sequence[Migration], current: int | None) -> None:
    if current is None:
        return
    late = [m for m in pending if m.version < current]
    if late:
        names = ", ".join(m.up.name for m in late)
        raise OutOfOrder(
            f"pending version(s) {names} are below the newest applied version {current}; "
            "renumber them above it (they would run after newer migrations)",
            version=late[0].version,
        )


def refuse_other_tools(request: Request, found: Sequence[tuple[str, str]]) -> list[str]:
    """Another tool's history on the search path while ours is empty (issue 26 item 12): a
    migrate would run every version again from the first, so it is refused naming the table
    and the adopt command; ``status`` and ``rollback`` only warn."""
    if not found:
        return []
    table, tool = found[0]
    told = (
        f"{tool}'s history table {table} (on the session's search_path) records applied "
        f"versions, and StackFlowPatcher's own history (PATCHER_SCHEMA.PATCHER_TABLE) is empty"
    )
    adopt = (
        f"patcher adopt --from {tool} --table {table} (payload "
        f'{{"action": "adopt", "from": "{tool}", "table": "{table}"}})'
    )
    others = "".join(f"; also {t}'s {name}" for name, t in found[1:])
    if request.action != "migrate":
        return [f"{told}: a migrate would refuse to run until {adopt} takes it over{others}"]
    raise ConfigError(
        f"{told}: migrate would run every version again from the first. Take that history "
        f"over first: {adopt}, then migrate. If that table belongs to another application, "
        "run with a search_path without its schema (options=-c search_path=... in the URL), "
        f"or drop or rename it{others}. Nothing was run",
        table=table,
        tool=tool,
    )
