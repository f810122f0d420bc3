"""Running a ``-- patcher:backfill`` version (SPEC section 12): key ranges, each its own
transaction with its checkpoint, the version recorded applied with the last one.

Before each range: the replicas' lag (``max_lag_ms``), the pause (``pause_ms``, not before the
first), and the deadline: a range starts only while more than the margin is left, else the run
is ``partial`` with ``progress`` (``Paused``). A range the watchdog cuts is rolled back (it
never committed) and the run is ``partial`` too: a backfill is never ``DeadlineExceeded``. A
range that hits lock_timeout is retried alone with back-off: it never committed either. A
range's COMMIT lost in flight: the next run reads the checkpoint, which says whether it did.
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial

from patcher.core.backfill import Checkpoint, RangeJob
from patcher.core.errors import (
    ChecksumMismatch,
    MigrationFailed,
    PatcherError,
    StatementFailed,
)
from patcher.core.models import HistoryChange, LockState, Step
from patcher.engine.backfill_port import BackfillHost, BackfillPort, backfill_port
from patcher.engine.context import START_SLACK_MS, RunContext, Watchdog
from patcher.engine.failures import migration_failed
from patcher.engine.lock_retry import with_lock_retries
from patcher.engine.step_signals import CommittedThenLost
from patcher.sql.backfill import Backfill
from patcher.sql.scripts import Script

LAG_POLL_SECONDS = (0.05, 1.0)
"""How often the replicas' lag is read while it is above ``max_lag_ms`` (first, cap)."""


class Paused(Exception):
    """Internal: the backfill stopped between ranges for the deadline; the run is partial."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def progress_of(point: Checkpoint) -> dict[str, int | None]:
    """The result's ``progress`` (SPEC section 12): totals for the version so far."""
    return {
        "rows_done": point.rows_done,
        "rows_estimated": point.rows_estimated,
        "ranges_done": point.ranges_done,
    }


def status_progress(ctx: RunContext) -> dict[str, int | None] | None:
    """What ``status`` carries of a backfill part way (SPEC 4 and 12): the ``progress`` of the
    first pending version when its checkpoint (``<history table>_bf``) says ranges of it are
    committed. Reads only; None when there is none."""
    if not ctx.plan.pending or not isinstance(ctx.backend, BackfillHost):
        return None
    point = ctx.backend.backfill().checkpoint(ctx.plan.pending[0].version)
    return progress_of(point) if point is not None else None


def first_job(ctx: RunContext, step: Step, script: Script) -> tuple[RangeJob, Checkpoint]:
    """The next range of ``step``'s backfill and where it stands; MigrationFailed when the
    table is missing or has no primary key (nothing was changed)."""
    bf = script.backfill
    assert bf is not None
    port = backfill_port(ctx.backend)
    v = step.migration.version
    key = port.key_of(bf.table)
    if key is None or not key.columns:
        why = "does not exist" if key is None else "has no primary key"
        raise MigrationFailed(
            f"version {v} is a backfill ({script.obj.name} line {bf.line}) over {bf.table}, "
            f"which {why}: a backfill runs in ranges of the table's primary key. "
            f"{'Create the table first' if key is None else 'Add a primary key'}, or remove "
            "the directive to run the statement in one transaction. Nothing was changed",
            version=v,
            file=script.obj.name,
            line=bf.line,
        )
    point = port.checkpoint(v)
    if point is None:
        point = Checkpoint(v, script.checksum, None, 0, 0, key.rows_estimated)
    elif point.checksum != script.checksum:
        raise ChecksumMismatch(
            f"{script.obj.name} changed after {point.ranges_done} ranges of its backfill "
            f"committed (checksum then {point.checksum[:12]}…, now {script.checksum[:12]}…): "
            "restore the file as it was to finish the backfill, or delete its row from the "
            "checkpoint table (<history table>_bf) to start it over",
            version=v,
            file=script.obj.name,
        )
    job = RangeJob(
        bf.table, bf.qualifier, bf.template, key, point.last_key, bf.batch_rows, point, _none()
    )
    return job, point


def preview_backfill(ctx: RunContext, step: Step, script: Script) -> dict[str, object]:
    """A dry run's view of a backfill: the key, the rows and ranges left, where it resumes."""
    bf = script.backfill
    assert bf is not None
    try:
        job, point = first_job(ctx, step, script)
    except (MigrationFailed, ChecksumMismatch) as exc:
        if backfill_port(ctx.backend).key_of(bf.table) is None:  # an earlier version makes it?
            why = "the table does not exist yet: its key is read when the backfill runs"
            return {"table": bf.table, "batch_rows": bf.batch_rows, "note": why}
        ctx.outcome.warnings.append(exc.message)
        return {"table": bf.table, "batch_rows": bf.batch_rows, "refused": exc.message}
    left = max(0, (point.rows_estimated or 0) - point.rows_done)
    return {
        "table": bf.table,
        "key": list(job.key.columns),
        "batch_rows": bf.batch_rows,
        "pause_ms": bf.pause_ms,
        "max_lag_ms": bf.max_lag_ms,
        "rows_estimated": point.rows_estimated,
        "ranges_estimated": -(-left // bf.batch_rows) if point.rows_estimated else None,
        **({"resumes": progress_of(point)} if point.ranges_done else {}),
    }


def verify_range(ctx: RunContext, step: Step, script: Script) -> str:
    """The statement of the backfill's next range with its bounds, for verify to run in
    its rolled-back transaction (the table's key and the checkpoint are read first)."""
    job, _ = first_job(ctx, step, script)
    return backfill_port(ctx.backend).first_range(job)


def _none() -> HistoryChange:
    return HistoryChange(version=0, description="", direction="up", checksum="")


def run_backfill(
    ctx: RunContext, step: Step, script: Script, change: HistoryChange, dog: Watchdog
) -> tuple[int, LockState]:
    """Run the ranges left of ``step``'s backfill; the version is applied with the last one.
    Raises ``Paused`` at the deadline and ``MigrationFailed`` when a range fails."""
    bf = script.backfill
    assert bf is not None
    port = backfill_port(ctx.backend)
    job, point = first_job(ctx, step, script)
    job = replace(job, change=change)
    ctx.outcome.progress = progress_of(point)
    started, ran, rows_now = time.perf_counter(), 0, 0
    while True:
        try:
            _wait_for_replicas(ctx, port, bf, dog, point)
            if ran and bf.pause_ms:
                _sleep(ctx, bf.pause_ms / 1000, dog, point)
            _may_start(ctx, dog, point)
        except Paused:
            _summary(ctx, step, point, ran, rows_now, started, "partial")
            raise
        try:
            done = with_lock_retries(partial(port.run_range, job, dog.stop), ctx.options)
        except StatementFailed as exc:
            if exc.cancelled and dog.fired:
                _summary(ctx, step, point, ran, rows_now, started, "partial")
                raise _paused(
                    ctx, step, point, "the Lambda deadline cut a range, rolled back"
                ) from exc
            if exc.at_commit and exc.connection_lost and _committed(ctx, step):
                _summary(ctx, step, point, ran + 1, rows_now, started, "applied")
                raise CommittedThenLost() from exc  # the last range: the version is applied
            error = migration_failed(step, script, exc, extra=_resumes(point))
            if not exc.connection_lost:
                took = int((time.perf_counter() - started) * 1000)
                ctx.backend.log(change, outcome="failed", error=error.message, duration_ms=took)
            _summary(ctx, step, point, ran, rows_now, started, "failed")
            raise error from exc
        ran, rows_now = ran + 1, rows_now + done.rows
        point = replace(
            point,
            last_key=done.last_key,
            rows_done=point.rows_done + done.rows,
            ranges_done=point.ranges_done + 1,
        )
        ctx.outcome.progress = progress_of(point)
        seconds = time.perf_counter() - started
        ctx.emit(
            "backfill_range",
            {
                "version": step.migration.version,
                **progress_of(point),
                "rows_per_s": int(rows_now / seconds) if seconds > 0 else None,
                "range_ms": done.elapsed_ms,
            },
        )
        if done.final:
            _summary(ctx, step, point, ran, rows_now, started, "applied")
            lock = LockState.HELD if ctx.backend.holds_lock() else LockState.LOST
            return int(seconds * 1000), lock
        job = replace(job, after=done.last_key, checkpoint=point)


def _committed(ctx: RunContext, step: Step) -> bool:
    """A range's COMMIT was lost in flight: whether a new session finds the version applied
    (it was the last range). Otherwise the checkpoint says which ranges are done, and the next
    run resumes after them; unknown (no new session) counts as not applied."""
    if ctx.connect is None:
        return False
    try:
        other = ctx.connect()
        try:
            with other.errors_translated():
                return step.migration.version in {row.version for row in other.read_history()}
        finally:
            other.close()
    except PatcherError:
        return False


def _resumes(point: Checkpoint) -> str:
    return (
        f" The {point.ranges_done} ranges committed before it stay done (checkpoint in the "
        "<history table>_bf table): the next run resumes after them, never running one twice"
    )


def _summary(
    ctx: RunContext, step: Step, point: Checkpoint, ran: int, rows: int, started: float, how: str
) -> None:
    """The log line (and metric) of this invocation's part of the backfill."""
    ctx.emit(
        "backfill",
        {
            "version": step.migration.version,
            "outcome": how,
            **progress_of(point),
            "ranges_now": ran,
            "rows_now": rows,
            "duration_ms": int((time.perf_counter() - started) * 1000),
        },
    )


def _paused(ctx: RunContext, step: Step, point: Checkpoint, why: str) -> Paused:
    estimated = point.rows_estimated
    of = f" of about {estimated:,}" if estimated else ""
    return Paused(
        f"version {step.migration.version} (backfill): {point.rows_done:,}{of} rows done in "
        f"{point.ranges_done} ranges; {why}; invoke again to continue"
    )


def _may_start(ctx: RunContext, dog: Watchdog, point: Checkpoint) -> None:
    """A range starts only while more than the margin is left (SPEC 7 item 1)."""
    budget, cut = ctx.deadline.budget_ms(), ctx.deadline.cut_in_seconds()
    late = budget is not None and budget < START_SLACK_MS  # the margin (SPEC 7 item 1)
    late = late or (cut is not None and cut * 1000 < START_SLACK_MS)  # the cut is that near
    if dog.stop() or late:
        step = _step_of(ctx, point)
        raise _paused(
            ctx, step, point, "stopped before the next range: the Lambda deadline is near"
        )


def _step_of(ctx: RunContext, point: Checkpoint) -> Step:
    return next(s for s in ctx.plan.steps if s.migration.version == point.version)


def _sleep(ctx: RunContext, seconds: float, dog: Watchdog, point: Checkpoint) -> None:
    """Sleep, but never past the time a range may still start."""
    budget = ctx.deadline.budget_ms()
    if budget is not None:
        seconds = min(seconds, max(0.0, (budget - START_SLACK_MS) / 1000 / ctx.deadline.rate()))
    time.sleep(seconds)
    _may_start(ctx, dog, point)


def _wait_for_replicas(
    ctx: RunContext, port: BackfillPort, bf: Backfill, dog: Watchdog, point: Checkpoint
) -> None:
    """While the replicas' lag is above ``max_lag_ms``, wait (within the deadline)."""
    if bf.max_lag_ms is None:
        return
    delay, waited = LAG_POLL_SECONDS[0], 0.0
    while True:
        lag = port.replica_lag_ms()
        if lag is None or lag <= bf.max_lag_ms:
            if waited:
                ctx.emit(
                    "backfill_waited", {"version": point.version, "waited_ms": int(waited * 1000)}
                )
            return
        ctx.emit(
            "backfill_waiting",
            {"version": point.version, "lag_ms": lag, "max_lag_ms": bf.max_lag_ms},
        )
        _sleep(ctx, delay, dog, point)
        waited += delay
        delay = min(delay * 2, LAG_POLL_SECONDS[1])
