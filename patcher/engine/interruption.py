"""A run the CLI was asked to stop (SIGINT / SIGTERM): where it stops, what it reports, and the
audit row it leaves (SPEC 4, error type ``Interrupted``).

The signal handler cancels what the session runs (``core/interrupt.py``); the engine stops as a
Lambda deadline cut stops it. At a migration, ``failures.interrupted`` says what was left (a
transactional one rolled back, a no-transaction one dirty); here are the other stopping points:
the lock wait, between migrations, and any other error a cancel caused (a bookkeeping query, a
dry run's preview), which becomes the same ``Interrupted`` with what the run had done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from patcher.core.errors import Interrupted, PatcherError
from patcher.core.models import HistoryChange, Step

if TYPE_CHECKING:
    from patcher.engine.context import RunContext

_REST = (
    "The versions the result lists as applied or reverted are recorded; nothing else changed, "
    "and the migration lock was released"
)


def before_step(ctx: RunContext, step: Step) -> None:
    """Between migrations: raise Interrupted, naming the version that was not started."""
    if not ctx.interrupt.requested:
        return
    v = step.migration.version
    raise Interrupted(
        f"interrupted by {ctx.interrupt.name} before version {v} {step.direction} started: "
        f"nothing of it ran. {_REST}. Run again to continue",
        version=v,
    )


def during_lock_wait(ctx: RunContext, holder: str) -> Interrupted:
    """The run stopped waiting for the migration lock: it had done nothing."""
    return Interrupted(
        f"interrupted by {ctx.interrupt.name} while waiting for the migration lock, held by "
        f"{holder}: nothing was run and nothing changed. Run again once that run is done"
    )


def committed_anyway(ctx: RunContext, step: Step) -> bool:
    """A cancel at COMMIT: whether the migration committed before it (the cancel then hit the
    lock check that rides after COMMIT). The session is alive: its history tells."""
    recorded = {row.version for row in ctx.backend.read_history()}
    return (step.migration.version in recorded) == (step.direction == "up")


def stopped(ctx: RunContext, exc: PatcherError) -> PatcherError:
    """The error a run ends with: once a signal came, any error is reported as Interrupted (a
    cancel caused it, or the signal outranks it), with an audit row for a run that writes."""
    if not ctx.interrupt.requested:
        return exc
    error = exc if isinstance(exc, Interrupted) else _interrupted(ctx, exc)
    if not ctx.interrupt.audited and _writes(ctx):
        audit(ctx, _run_change(ctx), error.message)
    return error


def audit(
    ctx: RunContext, change: HistoryChange, message: str, duration_ms: int | None = None
) -> None:
    """The run's audit row, outcome ``interrupted`` (best effort: no log table, no row)."""
    ctx.interrupt.audited = True
    try:
        with ctx.backend.errors_translated():
            ctx.backend.log(change, outcome="interrupted", error=message, duration_ms=duration_ms)
    except PatcherError:
        pass  # a first run waiting for the lock has no log table yet: it changed nothing


def finished_anyway(ctx: RunContext) -> None:
    """A signal that came when nothing was left to stop: the run finished, and says so."""
    if ctx.interrupt.requested:
        ctx.outcome.warnings.append(
            f"{ctx.interrupt.name} came when nothing was left to stop: the run finished, and "
            "this result is what it did"
        )


def _interrupted(ctx: RunContext, exc: PatcherError) -> Interrupted:
    if not _writes(ctx):
        what = "status" if ctx.request.action == "status" else "a dry run"
        return Interrupted(
            f"interrupted by {ctx.interrupt.name}: the {ctx.request.action} stopped before it "
            f"finished; it is {what}, nothing was changed"
        )
    first = exc.message.split(". ")[0]
    return Interrupted(
        f"interrupted by {ctx.interrupt.name}: the run stopped ({first}). {_REST}, except a "
        "no-transaction migration that was running: run status to see whether one is left "
        "dirty, then run again",
        **exc.details,
    )


def _writes(ctx: RunContext) -> bool:
    return not ctx.request.dry_run and ctx.request.action != "status"


def _run_change(ctx: RunContext) -> HistoryChange:
    """The audit row of a run stopped outside any migration: no version."""
    return HistoryChange(
        version=None,
        description=f"{ctx.request.action} interrupted by {ctx.interrupt.name}",
        direction="down" if ctx.request.action == "rollback" else "up",
        checksum="",
    )
