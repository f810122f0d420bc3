"""Plain data passed between the source, the planner, the backend and the runner."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Action = Literal["migrate", "rollback", "status", "baseline", "repair"]
Direction = Literal["up", "down"]
ACTIONS: tuple[Action, ...] = ("migrate", "rollback", "status", "baseline", "repair")
MAX_VERSION = 10**18 - 1  # 18 decimal digits


@dataclass(frozen=True)
class SourceObject:
    """One object a source listed: its file name, where to read it, and a cheap identity.

    ``fingerprint`` changes whenever the content changes (S3: the ETag) and is
    ``None`` when the source has no such identity; then the file is always read to checksum it.
    """

    name: str
    key: str
    fingerprint: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Migration:
    """One version: its up script and, when reversible, its down script."""

    version: int
    description: str
    up: SourceObject
    down: SourceObject | None = None

    @property
    def reversible(self) -> bool:
        return self.down is not None

    def file(self, direction: Direction) -> SourceObject:
        obj = self.up if direction == "up" else self.down
        if obj is None:  # the planner refuses irreversible rollbacks before this can happen
            raise ValueError(f"version {self.version} has no {direction} script")
        return obj


@dataclass(frozen=True)
class Catalog:
    """Every valid migration of a source, ordered by version, and what was ignored."""

    migrations: tuple[Migration, ...]
    warnings: tuple[str, ...] = ()

    def by_version(self) -> dict[int, Migration]:
        return {m.version: m for m in self.migrations}


@dataclass(frozen=True)
class AppliedRow:
    """One row of the history table."""

    version: int
    description: str
    checksum: str
    applied_at: datetime | None = None
    execution_ms: int = 0
    dirty: bool = False
    dirty_direction: Direction | None = None
    fingerprint: str | None = None


@dataclass(frozen=True)
class Request:
    """A validated request: what the payload or the command line asked for."""

    action: Action
    dry_run: bool = False
    target: int | None = None
    steps: int | None = None
    verify: bool = False


@dataclass(frozen=True)
class Step:
    """One unit of planned work."""

    migration: Migration
    direction: Direction
    kind: Literal["run", "baseline", "clear_dirty", "rechecksum"] = "run"
    checksum: str | None = None  # for rechecksum: the file's current checksum


@dataclass(frozen=True)
class Plan:
    """What a request will do, decided from the catalog and the history alone."""

    request: Request
    steps: tuple[Step, ...]
    current_version: int | None
    pending: tuple[Migration, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)
