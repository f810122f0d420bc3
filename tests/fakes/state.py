"""The fake database's state: what a transaction copies at BEGIN, and the server clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Table:
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    reltuples: int = -1  # -1 until ANALYZE, as on PostgreSQL 14+
    filenode: int = 0


@dataclass
class Index:
    table: str
    unique: bool = False
    valid: bool = True


@dataclass
class State:
    """Everything a transaction can change (copied at BEGIN, kept at COMMIT)."""

    tables: dict[str, Table] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)
    default_read_only: bool = False
    temp: dict[int, dict[str, Table]] = field(default_factory=dict)  # by session pid


class FakeClock:
    """The server's clock in milliseconds; ``pg_sleep`` advances it instead of sleeping."""

    def __init__(self) -> None:
        self.now_ms = 0

    def advance(self, ms: int) -> None:
        self.now_ms += ms

    def now(self) -> datetime:
        return _EPOCH + timedelta(milliseconds=self.now_ms)

    def time_left(self, deadline_ms: int) -> Callable[[], int]:
        """A ``time_left_ms`` for the runner: a Lambda deadline on this clock."""
        return lambda: deadline_ms - self.now_ms
