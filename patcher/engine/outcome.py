"""What a run produces: its Outcome and the typed result entries it lists."""

from __future__ import annotations

from dataclasses import field, fields
from typing import TYPE_CHECKING, Any

from patcher.core.errors import PatcherError
from patcher.core.models import AppliedRow, Direction, HistoryChange, Migration, Step
from patcher.core.record import mutable_record

if TYPE_CHECKING:
    from patcher.sql.scripts import Script, ScriptSet

_ALWAYS = frozenset({"version", "description", "direction", "state", "checksum"})


@mutable_record
class ResultEntry:
    """One entry of a result's ``migrations`` list (SPEC section 4).

    The first five fields are always reported; every other one only when set."""

    version: int | None  # None for a repeatable script
    description: str
    direction: Direction
    state: str
    checksum: str | None
    transactional: bool | None = None
    repeatable: bool | None = None
    change: str | None = None
    sql: str | None = None
    applied_at: str | None = None
    duration_ms: int | None = None
    risks: list[dict[str, Any]] | None = None
    locks: list[dict[str, str]] | None = None
    rewrites: list[str] | None = None
    verified: bool | None = None
    verify_note: str | None = None
    statements: list[str] | None = None
    lock_conflict: dict[str, Any] | None = None
    data_at_risk: list[dict[str, Any]] | None = None
    data_at_risk_truncated: int | None = None
    holder: dict[str, Any] | None = None  # a running entry's lock holder (engine/status.py)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in _FIELDS:
            value = getattr(self, f)
            if value is not None or f in _ALWAYS:
                out[f] = value
        return out

    def event_fields(self) -> dict[str, Any]:
        """What the per-migration log line and metric need."""
        return {
            "version": self.version,
            "direction": self.direction,
            "state": self.state,
            "duration_ms": self.duration_ms,
        }


_FIELDS = tuple(f.name for f in fields(ResultEntry))


@mutable_record
class Outcome:
    """What a run did, before it is shaped into the SPEC result."""

    status: str
    entries: list[ResultEntry] = field(default_factory=list)
    pending: list[Migration] = field(default_factory=list)
    current_version: int | None = None
    warnings: list[str] = field(default_factory=list)
    error: PatcherError | None = None
    unlogged: tuple[HistoryChange, str] | None = None  # a failure the lost session never logged
    history_read: bool = False  # False: the run ended before it knew the current version

    def version_unknown(self) -> str | None:
        """Why the current version is unknown (the run stopped before it read the history),
        or None when it is known."""
        if self.history_read:
            return None
        cause = f": {self.error.type}" if self.error is not None else ""
        return f"the run stopped before it read the history{cause}"

    def fail(self, exc: PatcherError) -> Outcome:
        """End the run with ``exc``: its category decides the status."""
        self.error = exc
        self.status = exc.status
        return self


def history_change(step: Step, script: Script | None) -> HistoryChange:
    """The history change a step makes, with the checksum it records."""
    m = step.migration
    return HistoryChange(
        version=m.version,
        description=m.description,
        direction=step.direction,
        checksum=step.checksum or (script.checksum if script else ""),
        fingerprint=m.up.fingerprint,
        kind=step.kind,
    )


def started_fields(step: Step, script: Script) -> dict[str, Any]:
    """What the ``migration_started`` event says: which migration, which way, which file."""
    m = step.migration
    return {
        "version": m.version,
        "description": m.description,
        "direction": step.direction,
        "file": script.obj.name,
        "transactional": script.transactional,
        "statements": len(script.statements),
    }


def step_entry(step: Step, scripts: ScriptSet, state: str, *, preview: bool = False) -> ResultEntry:
    """A planned step as a result entry; ``preview`` adds the SQL it would run."""
    m = step.migration
    script = scripts.get(step.key)
    return ResultEntry(
        version=m.version,
        description=m.description,
        direction=step.direction,
        state=state,
        checksum=script.checksum if script else step.checksum,
        transactional=script.transactional if script else True,
        change=step.kind.change_text(step.direction),
        sql=script.text if preview and script is not None and step.kind.runs_sql else None,
    )


def applied_entry(row: AppliedRow) -> ResultEntry:
    """A history row as a result entry, for ``status``."""
    return ResultEntry(
        version=row.version,
        description=row.description,
        direction="up",
        state="applied",
        checksum=row.checksum,
        applied_at=row.applied_at.isoformat() if row.applied_at else None,
        duration_ms=row.execution_ms,
    )
