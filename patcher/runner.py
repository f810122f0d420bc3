"""The one place policy lives: list, lock, read history, plan, run, record, report.

    source.list() -> build_catalog -> [lock] -> read_history -> checksums of applied files
    -> plan() -> load the scripts the plan needs -> run each step (deadline, retries) -> Outcome

Validation (request, source, dirty, drift, order, reversibility, script modes) all happens
before the first change. Dry runs and ``status`` take no lock and create nothing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from patcher.errors import (
    DeadlineReached,
    LockTimeout,
    MigrationFailed,
    PatcherError,
)
from patcher.models import MAX_VERSION as MAX
from patcher.models import AppliedRow, Catalog, Direction, Migration, Plan, Request, Step
from patcher.naming import build_catalog
from patcher.planner import plan, validate_request
from patcher.postgres import HistoryChange, PostgresBackend, SqlFailure
from patcher.scripts import Script, checksum, load_script
from patcher.sources.base import MigrationSource
from patcher.sqlscript import line_col

EventSink = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class RunOptions:
    lock_wait_seconds: float = 60.0
    lock_poll_seconds: tuple[float, float] = (0.02, 0.1)  # first interval, cap (doubling)
    lock_retries: int = 3  # extra attempts after a statement hits lock_timeout
    lock_retry_backoff_seconds: float = 1.0  # doubles each retry
    time_margin_seconds: float = 30.0
    statement_timeout_ms: int | None = None
    lock_timeout: str = "10s"
    verify_lock_timeout_ms: int = 2000  # a preview never queues production behind it for long


@dataclass
class Outcome:
    """What a run did, before it is shaped into the SPEC result."""

    status: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    pending: list[Migration] = field(default_factory=list)
    current_version: int | None = None
    warnings: list[str] = field(default_factory=list)
    error: PatcherError | None = None
    unlogged: tuple[HistoryChange, str] | None = None  # a failure the lost session never logged


_INVALID = {
    "InvalidRequest", "InvalidSource", "ConfigError", "ChecksumMismatch", "MissingMigration",
    "OutOfOrder", "DirtyDatabase", "Irreversible",
}  # fmt: skip


def status_for(error: PatcherError) -> str:
    """The result status an error ends a run with."""
    if error.type == "LockTimeout":
        return "locked"
    return "invalid" if error.type in _INVALID else "failed"


class Deadline:
    """The Lambda clock: how long a statement may take and whether to start another step."""

    def __init__(self, time_left_ms: Callable[[], int] | None, margin_s: float) -> None:
        self.time_left_ms, self.margin_ms = time_left_ms, int(margin_s * 1000)

    def budget_ms(self) -> int | None:
        """Milliseconds usable before the margin, or None without a deadline."""
        return None if self.time_left_ms is None else self.time_left_ms() - self.margin_ms

    def check(self, what: str) -> None:
        budget = self.budget_ms()
        if budget is not None and budget < 1000:
            raise DeadlineReached(f"stopped before {what}: the Lambda deadline is near")


def run(
    request: Request,
    *,
    source: MigrationSource,
    connect: Callable[[], PostgresBackend],
    options: RunOptions | None = None,
    time_left_ms: Callable[[], int] | None = None,
    events: EventSink | None = None,
) -> Outcome:
    """Carry out one request from start to end; never raises a PatcherError."""
    opts = options or RunOptions()
    emit = events or (lambda _name, _fields: None)
    deadline = Deadline(time_left_ms, opts.time_margin_seconds)
    outcome = Outcome(status="invalid")
    try:
        validate_request(request)
        catalog = build_catalog(source.list())
        outcome.warnings.extend(catalog.warnings)
        backend = connect()
    except PatcherError as exc:
        return _fail(outcome, exc)
    try:
        with backend.errors_translated():
            _run_locked(request, catalog, source, backend, opts, deadline, emit, outcome)
    except PatcherError as exc:
        _fail(outcome, exc)
    finally:
        backend.close()
    if outcome.unlogged is not None:
        _log_after_reconnect(connect, *outcome.unlogged)
    return outcome


def _log_after_reconnect(
    connect: Callable[[], PostgresBackend], change: HistoryChange, message: str
) -> None:
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


def _run_locked(
    request: Request,
    catalog: Catalog,
    source: MigrationSource,
    backend: PostgresBackend,
    opts: RunOptions,
    deadline: Deadline,
    emit: EventSink,
    outcome: Outcome,
) -> None:
    writes = not request.dry_run and request.action != "status"
    needs_lock = writes or request.verify
    # A migrate waiting behind another run stops waiting once that run has applied everything
    # it would apply itself: it then plans without the lock and finds nothing to do.
    settled = (
        _settled(request, catalog, backend) if writes and request.action == "migrate" else None
    )
    locked = needs_lock and _acquire_lock(backend, opts, deadline, emit, settled)
    if locked and writes:
        backend.check_writable()  # a replica or read-only target: refuse before any write
    history, the_plan = _read_and_plan(request, catalog, source, backend, outcome)
    if needs_lock and not locked and the_plan.steps:  # the history moved again: wait for real
        _acquire_lock(backend, opts, deadline, emit, None)
        backend.check_writable()
        history, the_plan = _read_and_plan(request, catalog, source, backend, outcome)
    outcome.warnings = list(the_plan.warnings)  # the plan's include the catalog's
    outcome.pending = list(the_plan.pending)
    scripts = _load_scripts(source, the_plan.steps)
    outcome.warnings += _empty_script_warnings(the_plan.steps, scripts)
    if request.action == "status":
        outcome.status = "planned" if the_plan.pending else "up_to_date"
    elif not the_plan.steps:
        outcome.status = "up_to_date"
    elif request.dry_run:
        outcome.entries = [_entry(s, scripts, "planned", preview=True) for s in the_plan.steps]
        outcome.status = "planned"
        _add_risks(backend, the_plan, scripts, outcome)
        if request.verify:
            _verify(backend, the_plan, scripts, opts, deadline, outcome)
    elif request.action in ("baseline", "repair"):
        backend.ensure_tables()
        _record_only(backend, the_plan, scripts, outcome)
    else:
        backend.ensure_tables()  # only now: a refused run leaves no trace, not even tables
        _execute(backend, the_plan, scripts, history, opts, deadline, emit, outcome)


def _read_and_plan(
    request: Request,
    catalog: Catalog,
    source: MigrationSource,
    backend: PostgresBackend,
    outcome: Outcome,
) -> tuple[list[AppliedRow], Plan]:
    history = backend.read_history()
    outcome.current_version = max((r.version for r in history), default=None)
    if request.action == "status":  # listed even when validation refuses the state below
        outcome.entries = [_applied_entry(row) for row in history]
    return history, plan(request, catalog, history, _applied_checksums(source, catalog, history))


def _settled(request: Request, catalog: Catalog, backend: PostgresBackend) -> Callable[[], bool]:
    """Whether every version this migrate would apply is applied, and none is dirty."""
    target = MAX if request.target is None else request.target
    wanted = [m.version for m in catalog.migrations if m.version <= target]
    top = max(wanted, default=0)
    return lambda: backend.applied_count(top) == len(wanted)


def _acquire_lock(
    backend: PostgresBackend,
    opts: RunOptions,
    deadline: Deadline,
    emit: EventSink,
    settled: Callable[[], bool] | None = None,
) -> bool:
    """Poll pg_try_advisory_lock with backoff until the wait (or the Lambda budget) runs out.

    Returns False, without the lock, as soon as ``settled()`` says there is nothing to wait
    for. Sleeps are jittered so that waiters started together do not poll in lockstep."""
    started = time.monotonic()
    wait_s = opts.lock_wait_seconds
    budget = deadline.budget_ms()
    if budget is not None:
        wait_s = max(0.0, min(wait_s, budget / 1000))
    interval, cap = opts.lock_poll_seconds
    while not backend.try_lock():
        waited = time.monotonic() - started
        if waited >= wait_s:
            holder = backend.lock_holder()
            who = holder.describe() if holder else "a session that has since let go"
            raise LockTimeout(
                f"another run holds the migration lock (key {backend.key}): {who}. Waited "
                f"{waited:.1f}s (PATCHER_LOCK_WAIT_SECONDS or the Lambda time left). Let it "
                "finish and invoke again; if that session is stuck, end it with "
                f"SELECT pg_terminate_backend({holder.pid if holder else 'pid'})",
                holder_pid=holder.pid if holder else None,
                holder_application_name=holder.application_name if holder else None,
                holder_since=holder.since if holder else None,
            )
        if settled is not None and settled():
            emit("lock_not_needed", {"lock_wait_ms": int((time.monotonic() - started) * 1000)})
            return False
        time.sleep(min(interval * random.uniform(0.5, 1.0), max(0.0, wait_s - waited)))
        interval = min(interval * 2, cap)
    emit("lock_acquired", {"lock_wait_ms": int((time.monotonic() - started) * 1000)})
    return True


def _applied_checksums(
    source: MigrationSource, catalog: Catalog, history: list[AppliedRow]
) -> dict[int, str]:
    """Current checksums of applied up scripts, reading only files not proven unchanged."""
    available = catalog.by_version()
    sums: dict[int, str] = {}
    to_read = []
    for row in history:
        migration = available.get(row.version)
        if migration is None:
            continue
        fingerprint = migration.up.fingerprint
        if fingerprint is not None and fingerprint == row.fingerprint:
            sums[row.version] = row.checksum
        else:
            to_read.append(migration.up)
    version_of = {m.up.key: m.version for m in catalog.migrations}
    for obj, data in source.read_many(to_read):
        sums[version_of[obj.key]] = checksum(data)
    return sums


def _load_scripts(source: MigrationSource, steps: Iterable[Step]) -> dict[tuple[int, str], Script]:
    """Fetch and check every script the plan runs or records, before anything changes."""
    wanted = {
        (s.migration.version, s.direction): s.migration.file(s.direction)
        for s in steps
        if s.kind in ("run", "baseline")
    }
    keys = {obj.key: slot for slot, obj in wanted.items()}
    return {
        keys[obj.key]: load_script(obj, data) for obj, data in source.read_many(wanted.values())
    }


def _empty_script_warnings(
    steps: Iterable[Step], scripts: dict[tuple[int, str], Script]
) -> list[str]:
    """A script with no statements runs as a no-op: legal, but often a botched upload."""
    empty = [
        scripts[(s.migration.version, s.direction)].obj.name
        for s in steps
        if s.kind == "run" and not scripts[(s.migration.version, s.direction)].statements
    ]
    return [
        f"{name} has no statements (empty or only comments): it is recorded as run without "
        "doing anything; if that is not what you meant, check the upload"
        for name in empty
    ]


def _change(step: Step, scripts: dict[tuple[int, str], Script]) -> HistoryChange:
    m = step.migration
    script = scripts.get((m.version, step.direction))
    kind = f"clear_dirty_{step.direction}" if step.kind == "clear_dirty" else step.kind
    return HistoryChange(
        version=m.version,
        description=m.description,
        direction=step.direction,
        checksum=step.checksum or (script.checksum if script else ""),
        fingerprint=m.up.fingerprint,
        kind=kind,
    )


def _entry(
    step: Step, scripts: dict[tuple[int, str], Script], state: str, *, preview: bool = False
) -> dict[str, Any]:
    m = step.migration
    script = scripts.get((m.version, step.direction))
    entry: dict[str, Any] = {
        "version": m.version,
        "description": m.description,
        "direction": step.direction,
        "state": state,
        "checksum": script.checksum if script else step.checksum,
        "transactional": script.transactional if script else True,
    }
    if step.kind != "run":
        entry["change"] = {
            "baseline": "marked as applied without running it",
            "clear_dirty": f"clears the dirty mark of an unfinished {step.direction} script",
            "rechecksum": "records the changed file's new checksum",
        }[step.kind]
    if preview and script is not None and step.kind == "run":
        entry["sql"] = script.text
    return entry


def _add_risks(
    backend: PostgresBackend,
    the_plan: Plan,
    scripts: dict[tuple[int, str], Script],
    outcome: Outcome,
) -> None:
    """Every dry run: what each planned script risks, from PostgreSQL's own parser."""
    from patcher.risks import analyze  # pglast loads only for previews

    sizes = backend.table_sizes()
    for step, entry in zip(the_plan.steps, outcome.entries, strict=True):
        script = scripts.get((step.migration.version, step.direction))
        if script is not None and step.kind == "run":
            risks = analyze(script.text, transactional=script.transactional, existing_tables=sizes)
            entry["risks"] = [r.to_dict() for r in risks]


def _verify(
    backend: PostgresBackend,
    the_plan: Plan,
    scripts: dict[tuple[int, str], Script],
    opts: RunOptions,
    deadline: Deadline,
    outcome: Outcome,
) -> None:
    """Execute the planned transactional scripts in one rolled-back transaction; annotate."""
    runnable = []
    for step, entry in zip(the_plan.steps, outcome.entries, strict=True):
        script = scripts[(step.migration.version, step.direction)]
        if script.transactional:
            runnable.append((step, script, entry))
        else:
            entry["verified"] = False
            entry["verify_note"] = (
                "no-transaction script: it cannot run inside a rolled-back transaction, so it "
                "was not executed; read its statements"
            )
            entry["statements"] = list(script.statement_texts)
    reports = backend.verify(
        [script.statement_texts for _, script, _ in runnable],
        opts.verify_lock_timeout_ms,
        _timeout_source(opts, deadline),
    )
    for (step, script, entry), report in zip(runnable, reports, strict=False):
        entry["duration_ms"] = report.duration_ms
        entry["locks"] = [{"relation": rel, "mode": mode} for rel, mode in report.locks]
        entry["rewrites"] = report.rewrites
        entry["verified"] = report.failure is None
        failure = report.failure
        if failure is None:
            continue
        error = _migration_failed(step, script, failure)
        if failure.lock_not_available:
            entry["lock_conflict"] = {k: error.details.get(k) for k in ("line", "column")}
            outcome.warnings.append(
                f"verification of version {step.migration.version} could not get a lock "
                f"within {opts.verify_lock_timeout_ms} ms at {script.obj.name} line "
                f"{error.details['line']}: another session holds a conflicting lock now; the "
                "real run would wait up to PATCHER_LOCK_TIMEOUT, then retry"
            )
        else:
            entry["state"] = "failed"
            outcome.status = "failed"
            outcome.error = MigrationFailed(
                f"verification (rolled back, nothing changed): {error.message}", **error.details
            )
    for _, _, entry in runnable[len(reports) :]:
        entry["verified"] = False
        entry["verify_note"] = "not verified: an earlier script stopped the verification"


def _applied_entry(row: AppliedRow) -> dict[str, Any]:
    """A history row as a result entry, for ``status``."""
    return {
        "version": row.version,
        "description": row.description,
        "direction": "up",
        "state": "applied",
        "checksum": row.checksum,
        "applied_at": row.applied_at.isoformat() if row.applied_at else None,
        "duration_ms": row.execution_ms,
    }


def _record_only(
    backend: PostgresBackend,
    the_plan: Plan,
    scripts: dict[tuple[int, str], Script],
    outcome: Outcome,
) -> None:
    backend.record([_change(s, scripts) for s in the_plan.steps])
    outcome.entries = [_entry(s, scripts, "applied") for s in the_plan.steps]
    outcome.status = "applied"
    if the_plan.request.action == "baseline":
        outcome.current_version = max(s.migration.version for s in the_plan.steps)
    else:
        rows = backend.read_history()
        outcome.current_version = max((r.version for r in rows), default=None)


def _execute(
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
                elapsed = _run_step(backend, step, script, _change(step, scripts), opts, deadline)
            except MigrationFailed as exc:
                cause = exc.__cause__
                if isinstance(cause, SqlFailure) and cause.connection_lost:
                    outcome.unlogged = (_change(step, scripts), exc.message)
                took = int((time.perf_counter() - started) * 1000)
                failed = {**_entry(step, scripts, "failed"), "duration_ms": took}
                outcome.entries.append(failed)
                emit("migration", {**{k: failed[k] for k in ("version", "direction", "state",
                                      "duration_ms")}, "error": exc.type})  # fmt: skip
                remaining.pop(0)
                raise
            remaining.pop(0)
            entry = {**_entry(step, scripts, done_state), "duration_ms": elapsed}
            outcome.entries.append(entry)
            emit("migration", {k: entry[k] for k in ("version", "direction", "state",
                                                     "duration_ms")})  # fmt: skip
            if step.direction == "up":
                applied.add(m.version)
                unapplied.pop(m.version, None)
            else:
                applied.discard(m.version)
                unapplied[m.version] = m
    finally:
        outcome.entries += [_entry(s, scripts, "not_run") for s in remaining]
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
    timeout = _timeout_source(opts, deadline)
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
        error = _migration_failed(step, script, exc)
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


def _timeout_source(opts: RunOptions, deadline: Deadline) -> Callable[[], int | None] | None:
    if deadline.time_left_ms is None:
        return None

    def cap() -> int | None:
        budget = max(1, deadline.budget_ms() or 1)
        return min(budget, opts.statement_timeout_ms or budget)

    return cap


def _migration_failed(step: Step, script: Script, exc: SqlFailure) -> MigrationFailed:
    stmt = script.statements[exc.index]
    line, column = stmt.line, stmt.column
    if exc.position is not None:
        line, column = line_col(script.text, stmt.start + exc.position - 1)
    m = step.migration
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
        statement=exc.index + 1,
        sqlstate=exc.sqlstate,
    )


def _fail(outcome: Outcome, exc: PatcherError) -> Outcome:
    outcome.error = exc
    outcome.status = status_for(exc)
    return outcome


__all__ = ["Deadline", "Direction", "Outcome", "RunOptions", "run", "status_for"]
