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
from patcher.core.errors import ConfigError, DriftDetected, PatcherError
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
    if reading is not None:
        _judge(outcome, reading, config.drift_ignore)
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


def _judge(outcome: Outcome, reading: DriftReading, ignore: tuple[str, ...]) -> None:
    """The status, error and warnings of one reading."""
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
    if reading.version != outcome.current_version:
        outcome.warnings.append(
            f"the snapshot is of version {reading.version} but version "
            f"{outcome.current_version} is applied (a run stored none since): differences may "
            "be the migrations after it; the next run that changes the schema stores a new one"
        )
    if ignore:
        outcome.warnings.append(f"left out (PATCHER_DRIFT_IGNORE): {', '.join(ignore)}")
    if not diffs:
        outcome.status = "in_sync"
        return
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
