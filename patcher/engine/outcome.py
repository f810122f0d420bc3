"""What a run carries between its parts: options, the Lambda clock, the outcome, its entries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from patcher.core.errors import DeadlineReached, PatcherError
from patcher.core.models import AppliedRow, Migration, Step
from patcher.db.postgres import HistoryChange
from patcher.sql.scripts import Script

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


def fail(outcome: Outcome, exc: PatcherError) -> Outcome:
    outcome.error = exc
    outcome.status = status_for(exc)
    return outcome


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


def history_change(step: Step, scripts: dict[tuple[int, str], Script]) -> HistoryChange:
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


def entry(
    step: Step, scripts: dict[tuple[int, str], Script], state: str, *, preview: bool = False
) -> dict[str, Any]:
    m = step.migration
    script = scripts.get((m.version, step.direction))
    item: dict[str, Any] = {
        "version": m.version,
        "description": m.description,
        "direction": step.direction,
        "state": state,
        "checksum": script.checksum if script else step.checksum,
        "transactional": script.transactional if script else True,
    }
    if step.kind != "run":
        item["change"] = {
            "baseline": "marked as applied without running it",
            "clear_dirty": f"clears the dirty mark of an unfinished {step.direction} script",
            "rechecksum": "records the changed file's new checksum",
        }[step.kind]
    if preview and script is not None and step.kind == "run":
        item["sql"] = script.text
    return item


def applied_entry(row: AppliedRow) -> dict[str, Any]:
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
