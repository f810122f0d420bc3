"""The fake's ``PreviewBackend`` (``patcher/engine/ports.py``): table sizes, no catalog,
verification and data at risk on a copy of the state that is always thrown away.

A mixin of ``tests.fakes.backend.FakeBackend``, on the same session (its ``db``, ``_enter`` and
``_statement``); ``tests/contract/test_preview_contract.py`` holds it to the real backend's
contract where it implements it (whole-table counts; a condition or a column is left unknown).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from patcher.core.data_loss import Created, Loss, Probe
from patcher.core.errors import StatementFailed
from patcher.core.models import VerifyReport

if TYPE_CHECKING:
    from tests.fakes.database import FakeDatabase

StopCheck = Callable[[], bool]


class FakePreview:
    """Every ``PreviewBackend`` method, as ``patcher.db`` does on PostgreSQL."""

    db: FakeDatabase
    broken: bool
    _effects: dict[str, set[Any]] | None
    # and, from FakeBackend: _enter(method), _statement(index, text, stop, in_transaction=...)

    def table_sizes(self) -> dict[str, int]:
        self._enter("table_sizes")
        return {f"public.{name}": t.reltuples for name, t in self.db.state.tables.items()}

    def catalog_facts(self) -> None:
        return None  # no catalog: previews judge rewrites from the SQL alone

    def verify(
        self,
        scripts: Sequence[Sequence[str]],
        lock_timeout_ms: int,
        stop: StopCheck | None = None,
    ) -> list[VerifyReport]:
        self._enter("verify")
        reports: list[VerifyReport] = []
        saved = copy.deepcopy(self.db.state)
        tables = set(saved.tables)
        held: set[tuple[str, str]] = set()
        try:
            for statements in scripts:
                started = self.db.clock.now_ms
                self._effects: dict[str, set[Any]] = {"locks": set(), "rewrites": set()}
                try:
                    for index, text in enumerate(statements):
                        self._statement(index, text, stop, in_transaction=True)
                except StatementFailed as exc:
                    reports.append(VerifyReport(self.db.clock.now_ms - started, [], [], exc))
                    break
                effects = self._effects
                locks = {(f"public.{t}", m) for t, m in effects["locks"] if t in tables}
                locks -= held
                held |= locks
                rewrites = sorted(f"public.{t}" for t in effects["rewrites"] if t in tables)
                reports.append(
                    VerifyReport(self.db.clock.now_ms - started, sorted(locks), rewrites, None)
                )
        finally:
            self._effects = None
            if not self.broken:
                self.db.state = saved
        return reports

    def estimate_at_risk(
        self,
        probes: Sequence[Probe],
        version: int,
        count_ms: int,
        budget_ms: int,
        created: Created | None = None,
    ) -> list[Loss]:
        """Whole-table probes counted from the fake's rows; a condition or a column is not
        evaluated here: unknown (None), marked estimated."""
        self._enter("estimate_at_risk")
        losses: list[Loss] = []
        for probe in probes:
            table = self.db.state.tables.get(probe.table)
            if table is None:
                continue
            whole = probe.column is None and (
                probe.change in ("drop", "truncate") or not probe.where
            )
            rows = len(table.rows) if whole else None
            losses.append(Loss(probe.key, probe.column, probe.change, rows, estimated=not whole))
        return losses

    def measure_at_risk(
        self,
        scripts: Sequence[Sequence[str]],
        versions: Sequence[int],
        casts: Sequence[Sequence[Probe]],
        lock_timeout_ms: int,
        stop: StopCheck | None = None,
    ) -> tuple[list[list[Loss]], StatementFailed | None]:
        """Each script run on a copy of the state: tables gone or with fewer rows."""
        self._enter("measure_at_risk")
        saved = copy.deepcopy(self.db.state)
        found: list[list[Loss]] = []
        try:
            for statements in scripts:
                before = {n: len(t.rows) for n, t in self.db.state.tables.items()}
                try:
                    for index, text in enumerate(statements):
                        self._statement(index, text, stop, in_transaction=True)
                except StatementFailed as exc:
                    return found, exc
                losses = []
                for name, rows in sorted(before.items()):
                    left = self.db.state.tables.get(name)
                    if left is None or len(left.rows) < rows:
                        change = "drop" if left is None else "delete"
                        lost = rows - (len(left.rows) if left is not None else 0)
                        losses.append(Loss(f"public.{name}", None, change, lost))
                found.append(losses)
        finally:
            if not self.broken:
                self.db.state = saved
        return found, None
