"""The fake's ``ForeignHistory`` port (``patcher/engine/ports.py``): other tools' history
tables in the fake's one schema, ``public``, read as ``patcher.db.foreign`` reads them (the
meaning of their rows is ``patcher.core.foreign_tools``', shared by both).

A mixin of ``tests.fakes.backend.FakeBackend``, on the same session (its ``db``, ``_enter`` and
``_transaction``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from patcher.core.foreign_tools import (
    ROWS,
    TOOLS,
    ForeignState,
    check_columns,
    interpret,
    made_by,
)
from tests.fakes.sql import UnsupportedSQL

if TYPE_CHECKING:
    from tests.fakes.database import FakeDatabase


class FakeForeign:
    """Every ``ForeignHistory`` method, as ``patcher.db`` does on PostgreSQL."""

    db: FakeDatabase
    table: str
    # and, from FakeBackend: _enter(method), _transaction()

    def other_histories(self) -> list[tuple[str, str]]:
        """Other tools' tables by default name and columns, with a row that is not a marker
        (the fake has one schema: public, the whole search_path)."""
        self._enter("other_histories")
        found = []
        for name, table in sorted(self.db.state.tables.items()):
            tool = next((t for t in TOOLS if made_by(t, name, set(table.columns))), None)
            marker = {"golang-migrate": ("version", -1), "goose": ("version_id", 0)}.get(tool or "")
            rows = [r for r in table.rows if marker is None or r.get(marker[0]) != marker[1]]
            if tool is not None and name != self.table and rows:
                found.append((f"public.{name}", tool))
        return found

    def current_schema(self) -> str:
        self._enter("current_schema")
        return "public"

    def read_foreign(self, tool: str, schema: str, table: str) -> ForeignState:
        self._enter("read_foreign")
        return self._read(tool, schema, table)

    @contextmanager
    def holding_foreign(self, tool: str, schema: str, table: str) -> Iterator[ForeignState]:
        """A transaction (the fake has no table locks: its sessions take turns) that reads the
        table; what the block writes is kept only when it ends without raising."""
        self._enter("holding_foreign")
        with self._transaction():
            yield self._read(tool, schema, table)

    def _read(self, tool: str, schema: str, table: str) -> ForeignState:
        if schema != "public":
            raise UnsupportedSQL("the fake has only the public schema")
        found = self.db.state.tables.get(table)
        check_columns(tool, schema, table, set(found.columns) if found else set())
        assert found is not None
        columns, order = ROWS[tool]
        rows = sorted(found.rows, key=lambda r: r[order])
        return interpret(tool, f'"{schema}"."{table}"', [[r[c] for c in columns] for r in rows])
