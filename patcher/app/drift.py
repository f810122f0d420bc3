"""``drift`` (SPEC section 13): the live schema held against the snapshot the last
schema-changing run stored with the history. Takes no lock and changes nothing.

``in_sync``: no difference. ``drifted``: ``ok`` false, error ``DriftDetected``, the result's
``differences`` each ``{kind, object, change, expected, actual}``. No usable snapshot:
``invalid``, ``MissingSnapshot`` saying how to take one. Objects of a kind the role cannot read
are listed in ``warnings`` as unreadable, never as removed.
"""

from __future__ import annotations

import time
from dataclasses import replace

from patcher.app.config import Config
from patcher.app.result import RunResult
from patcher.core.errors import ConfigError, DriftDetected, MissingSnapshot, PatcherError
from patcher.core.models import Request
from patcher.core.schema_drift import DriftReading, summary
from patcher.engine.drift_check import SchemaSnapshots
from patcher.engine.outcome import Outcome
from patcher.engine.ports import Connect

_UNREADABLE_SHOWN = 20


def drift(request: Request, config: Config, connect: Connect, request_id: str) -> RunResult:
    """Compare, on one session; never raises a PatcherError."""
    started = time.perf_counter()
    outcome = Outcome(status="invalid")
    reading: DriftReading | None = None
    try:
        backend = connect()
    except PatcherError as exc:
        outcome.fail(exc)
    else:
        try:
            with backend.errors_translated():
                if not isinstance(backend, SchemaSnapshots):
                    raise ConfigError(f"{type(backend).__name__} keeps no schema snapshots")
                history = backend.read_history()
                outcome.current_version = max((r.version for r in history), default=None)
                reading = backend.schema_drift(config.drift_ignore)
        except PatcherError as exc:
            outcome.fail(exc)
        finally:
            backend.close()
    if reading is not None and not _judge(outcome, reading, config.drift_ignore):
        reading = None  # not compared: no differences, no metric
    result = RunResult.of(
        outcome,
        action=request.action,
        dry_run=request.dry_run,
        request_id=request_id,
        duration_ms=int((time.perf_counter() - started) * 1000),
    )
    if reading is None:
        return result
    diffs = tuple(d.to_dict() for d in reading.comparison.differences)
    return replace(result, differences=diffs)


def _judge(outcome: Outcome, reading: DriftReading, ignore: tuple[str, ...]) -> bool:
    """The status, error and warnings of one reading; False when it cannot be judged."""
    diffs, unreadable = reading.comparison.differences, reading.comparison.unreadable
    if unreadable:
        shown = ", ".join(unreadable[:_UNREADABLE_SHOWN])
        more = len(unreadable) - _UNREADABLE_SHOWN
        outcome.warnings.append(
            f"{len(unreadable)} objects of the snapshot are unreadable by this role and were "
            f"not compared (not reported as removed): {shown}"
            + (f" and {more} more" if more > 0 else "")
            + "; grant it SELECT on the catalog tables it was refused, or run drift as the runner"
        )
    stale = reading.version != outcome.current_version
    if stale and diffs:  # they may be the migrations after it: no false drift (stale_snapshot)
        outcome.fail(stale_snapshot(reading.version, outcome.current_version, len(diffs)))
        return False
    if stale:
        outcome.warnings.append(
            f"the snapshot is of version {reading.version} but version "
            f"{outcome.current_version} is applied (a run stopped before it could store one); "
            "the live schema is the snapshot's, so the migrations after it changed no object "
            "it holds; the next run that changes the schema stores a new one"
        )
    if ignore:
        outcome.warnings.append(f"left out (PATCHER_DRIFT_IGNORE): {', '.join(ignore)}")
    if not diffs:
        outcome.status = "in_sync"
        return True
    outcome.fail(
        DriftDetected(
            f"the live schema differs from the snapshot of version {reading.version} (taken "
            f"{reading.taken_at}) in {len(diffs)} object{'s' * (len(diffs) != 1)}: "
            f"{summary(diffs, 10)}. Put it back with a migration (or by hand), or let the next "
            "migrate take it in; PATCHER_DRIFT_IGNORE leaves objects out",
            snapshot_version=reading.version,
            differences_count=len(diffs),
        )
    )
    return True


def stale_snapshot(snapshot: int | None, current: int | None, count: int) -> MissingSnapshot:
    """The snapshot is older than the history (a run stopped, its session or process lost,
    before it could store the snapshot of the state it left): the differences may be the
    migrations after it, so they are not reported as drift."""
    return MissingSnapshot(
        f"the schema snapshot is of version {snapshot}, the database is at version {current}: a "
        "run stopped before it could store one, so the live schema cannot be held against it "
        f"({count} object{'s differ' if count != 1 else ' differs'}, which may be the "
        f"migrations after version {snapshot}). The next migrate or rollback that applies or "
        "reverts a version stores a fresh one",
        snapshot_version=snapshot,
        current_version=current,
        differences_count=count,
    )
