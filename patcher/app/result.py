"""The result of a run: typed for the adapters (``RunResult``), rendered to the SPEC result object
(one JSON-ready dict, never larger than the Lambda limit) only at the edge, by ``to_dict``.

The commands return a ``RunResult``; an adapter decides on its fields (``isinstance(result.error,
DatabaseUnavailable)``, ``result.ok``), never on the rendered JSON's strings.

How a result is cut to the limit, and how its size is counted: ``result_fit.py``.
"""

from __future__ import annotations

from typing import Any

from patcher.app.result_fit import MARKER, fit, holds_sql
from patcher.core.errors import PatcherError
from patcher.core.models import Migration
from patcher.core.record import record
from patcher.engine.outcome import Outcome, ResultEntry

NOT_OK = frozenset({"failed", "locked", "invalid", "drifted"})  # the statuses whose ``ok`` is false
RESULT_LIMIT_BYTES = 5_500_000  # Lambda's synchronous response limit is 6 MB; keep headroom
UNKNOWN_KEY = "current_version_unknown_reason"  # set when the history was never read


@record
class RunResult:
    """What one request came to, typed: the status, the ``PatcherError`` that ended it (or
    None), the entries; ``to_dict`` renders the SPEC result (section 4) for the edge."""

    action: str
    dry_run: bool
    status: str
    error: PatcherError | None
    current_version: int | None
    entries: tuple[ResultEntry, ...]
    pending: tuple[Migration, ...]
    warnings: tuple[str, ...]
    request_id: str
    duration_ms: int
    differences: tuple[dict[str, Any], ...] | None = None  # drift only (SPEC 13)
    version_unknown: str | None = None  # why current_version is unknown (issue 28 item 4)
    progress: dict[str, int | None] | None = None  # a backfill's totals (SPEC 12)
    database_wait_ms: int | None = None  # issue 33: how long the database took to answer
    held: tuple[dict[str, Any], ...] | None = None  # SPEC 11: phase expand's kept-back versions
    release: dict[str, Any] | None = None  # SPEC 11: the release gate's alias routing

    @classmethod
    def of(
        cls,
        outcome: Outcome,
        *,
        action: str,
        dry_run: bool,
        request_id: str,
        duration_ms: int,
        database_wait_ms: int | None = None,
    ) -> RunResult:
        """The result of a run that ended with ``outcome``."""
        return cls(
            action=action,
            dry_run=dry_run,
            status=outcome.status,
            error=outcome.error,
            current_version=outcome.current_version,
            entries=tuple(outcome.entries),
            pending=tuple(outcome.pending),
            warnings=tuple(outcome.warnings),
            request_id=request_id,
            duration_ms=duration_ms,
            version_unknown=outcome.version_unknown(),
            progress=outcome.progress,
            database_wait_ms=database_wait_ms,
            held=None if outcome.held is None else tuple(outcome.held),
            release=outcome.release,
        )

    @property
    def ok(self) -> bool:
        return self.status not in NOT_OK

    def to_dict(self, limit: int = RESULT_LIMIT_BYTES) -> dict[str, Any]:
        """The SPEC result object, cut to fit ``limit`` bytes (a Lambda response's 6 MB)."""
        result: dict[str, Any] = {
            "ok": self.ok,
            "action": self.action,
            "dry_run": self.dry_run,
            "status": self.status,
            "current_version": self.current_version,
            "migrations": [entry.to_dict() for entry in self.entries],
            "pending": [{"version": m.version, "description": m.description} for m in self.pending],
            "warnings": list(self.warnings),
            "error": self.error.to_dict() if self.error else None,
            "request_id": self.request_id,
            "duration_ms": self.duration_ms,
        }
        if self.differences is not None:
            result["differences"] = list(self.differences)
        if self.version_unknown is not None:  # never read: no current version, no pending
            result = {
                **{k: v for k, v in result.items() if k != "pending"},
                UNKNOWN_KEY: self.version_unknown,
            }
        if self.progress is not None:
            result["progress"] = dict(self.progress)
        if self.database_wait_ms is not None:
            result["database_wait_ms"] = self.database_wait_ms
        if self.held is not None:
            result["held"] = list(self.held)
        if self.release is not None:
            result["release"] = self.release
        return fit(result, limit)


def build_result(
    *,
    action: str,
    dry_run: bool,
    outcome: Outcome,
    request_id: str,
    duration_ms: int,
    limit: int = RESULT_LIMIT_BYTES,
) -> dict[str, Any]:
    """Shape an Outcome into the SPEC result, cut to fit ``limit`` bytes (``RunResult.to_dict``)."""
    result = RunResult.of(
        outcome, action=action, dry_run=dry_run, request_id=request_id, duration_ms=duration_ms
    )
    return result.to_dict(limit)


__all__ = ["MARKER", "RunResult", "build_result", "fit", "holds_sql"]
