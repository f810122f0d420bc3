"""The fake's history bookkeeping: the history table and its audit log, written as
``patcher/db/history.py`` writes them on PostgreSQL (one statement: the change and its audit
row, both or neither). A mixin of ``tests.fakes.backend.FakeSession``.
"""

from __future__ import annotations

from collections.abc import Sequence

from patcher.core.errors import ConfigError
from patcher.core.models import HistoryChange, HistoryWrite
from tests.fakes.database import FakeDatabase, FakeDriverError

HISTORY_COLUMNS = (
    "version", "description", "checksum", "applied_at", "execution_ms", "dirty",
    "dirty_direction", "source_fingerprint", "applied_by",
)  # fmt: skip
LOG_COLUMNS = (
    "id", "at", "version", "description", "direction", "outcome", "checksum", "duration_ms",
    "error", "request_id", "invoked_by",
)  # fmt: skip


class FakeHistoryRows:
    """Writing history rows and audit rows; refusing a table another tool made."""

    db: FakeDatabase
    table: str
    log_table: str
    request_id: str
    invoked_by: str
    # and, from FakeSession: _refuse_read_only(command)

    def _write(
        self,
        write: HistoryWrite,
        change: HistoryChange,
        *,
        outcome: str,
        elapsed_ms: int | None,
        error: str | None = None,
    ) -> None:
        """One history change and its audit row, as one statement: both or neither."""
        tables = self.db.state.tables
        for name in (self.table, self.log_table):
            if name not in tables:
                raise FakeDriverError(f'relation "public.{name}" does not exist', "42P01")
        self._refuse_read_only("INSERT")
        history = tables[self.table].rows
        now = self.db.clock.now()
        row = next((r for r in history if r["version"] == change.version), None)
        if write in (HistoryWrite.INSERT, HistoryWrite.MARK_DIRTY_UP):
            if row is not None:
                raise FakeDriverError(
                    'duplicate key value violates unique constraint "schema_migrations_pkey"',
                    "23505",
                )
            dirty = write is HistoryWrite.MARK_DIRTY_UP
            history.append(
                {
                    "version": change.version,
                    "description": change.description,
                    "checksum": change.checksum,
                    "applied_at": now,
                    "execution_ms": 0 if dirty else elapsed_ms,
                    "dirty": dirty,
                    "dirty_direction": "up" if dirty else None,
                    "source_fingerprint": change.fingerprint,
                    "applied_by": self.invoked_by,
                }
            )
        elif write is HistoryWrite.DELETE:
            history[:] = [r for r in history if r["version"] != change.version]
        elif row is not None and write is HistoryWrite.MARK_DIRTY_DOWN:
            row.update(dirty=True, dirty_direction="down")
        elif row is not None and write is HistoryWrite.FINISH_UP:
            row.update(dirty=False, dirty_direction=None, execution_ms=elapsed_ms, applied_at=now)
        elif row is not None and write is HistoryWrite.CLEAR_DIRTY:
            row.update(dirty=False, dirty_direction=None)
        elif row is not None and write is HistoryWrite.RECHECKSUM:
            row.update(checksum=change.checksum, source_fingerprint=change.fingerprint)
        tables[self.log_table].rows.append(
            {
                "id": next(self.db._log_ids),
                "at": now,
                "version": change.version,
                "description": change.description,
                "direction": change.direction,
                "outcome": outcome,
                "checksum": change.checksum,
                "duration_ms": elapsed_ms,
                "error": error,
                "request_id": self.request_id,
                "invoked_by": self.invoked_by,
            }
        )

    def _check_foreign(self, name: str, expected: Sequence[str]) -> None:
        found = self.db.state.tables.get(name)
        if found is not None and not set(expected) <= set(found.columns):
            raise ConfigError(
                f"table public.{name} exists but was not made by StackFlowPatcher (columns: "
                f"{', '.join(sorted(found.columns))}). It was left untouched"
            )
