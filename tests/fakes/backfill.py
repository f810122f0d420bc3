"""The backfill port in memory (``patcher/engine/backfill_port.py``), a mixin of the fake session.

What the fake cannot express, and so ``tests/contract/test_backfill_contract.py`` holds only on
PostgreSQL: the catalog's primary key of a table made by SQL (the fake's CREATE TABLE knows no
keys: ``FakeDatabase.backfill_table`` declares one), composite and non-integer keys (its keys
are one integer column), any statement but ``UPDATE t SET c = c + 1``, and locks. What it does
express, as PostgreSQL does: keyset ranges of ``batch_rows`` keys, each range one transaction
with its checkpoint (a ``<history>_bf`` table in the fake's state, so a failed range leaves
nothing), the history change with the last range, faults (``method`` ``backfill_range``; a
statement fault on the range's statement; ``fail_commit``), and the replicas' lag
(``FakeDatabase.replica_lag``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from patcher.core.backfill import BackfillKey, Checkpoint, RangeDone, RangeJob
from patcher.core.errors import StatementFailed
from patcher.core.models import StopCheck
from tests.fakes.database import FakeDriverError
from tests.fakes.sql import UnsupportedSQL
from tests.fakes.state import Table

if TYPE_CHECKING:
    from tests.fakes.backend import FakeSession

_BUMP = re.compile(
    r'UPDATE\s+(?P<t>"?\w+"?)\s+SET\s+(?P<c>\w+)\s*=\s*(?P=c)\s*\+\s*1\s+WHERE\s+'
    r"__patcher_backfill_range__\s*\Z",
    re.IGNORECASE,
)
RANGE_MS = 10
"""How long a range takes on the fake's clock."""


class FakeBackfill:
    def __init__(self, session: FakeSession) -> None:
        self.s = session
        self.name = f"{session.table}_bf"

    def key_of(self, table: str) -> BackfillKey | None:
        self.s._enter("backfill_key")
        name = table.strip('"')
        found = self.s.db.state.tables.get(name)
        if found is None:
            return None
        key = self.s.db.primary_keys.get(name, ())
        return BackfillKey(key, ("bigint",) * len(key), len(found.rows) or None)

    def checkpoint(self, version: int) -> Checkpoint | None:
        self.s._enter("backfill_checkpoint")
        table = self.s.db.state.tables.get(self.name)
        row = next((r for r in table.rows if r["version"] == version), None) if table else None
        if row is None:
            return None
        last = tuple(row["last_key"]) if row["last_key"] is not None else None
        return Checkpoint(
            version, row["checksum"], last, row["rows_done"], row["ranges_done"], row["rows_est"]
        )

    def run_range(self, job: RangeJob, stop: StopCheck | None = None) -> RangeDone:
        s = self.s
        s._enter("backfill_range")
        if stop is not None and stop():
            raise StatementFailed("cut by the Lambda deadline before it was sent", cancelled=True)
        tables = s.db.state.tables
        tables.setdefault(self.name, Table(["version", "checksum", "last_key"]))
        started = s.db.clock.now_ms
        upper, text = self._bounds(job)
        with s._transaction():
            fault = s.db._faults("statement", text=text)
            if fault is not None:
                raise s._statement_fault(fault)
            rows = self._apply(job, upper)
            s.db.clock.advance(RANGE_MS)
            if stop is not None and stop():
                raise StatementFailed("canceling statement due to user request", cancelled=True)
            commit = s.db._faults("commit")
            elapsed = s.db.clock.now_ms - started
            self._save(job, upper, rows, elapsed)
            if commit is not None and not commit.committed:
                raise s._lost_at_commit(0)
        if commit is not None:
            raise s._lost_at_commit(0)
        return RangeDone(upper, rows, elapsed)

    def first_range(self, job: RangeJob) -> str:
        self.s._enter("backfill_first_range")
        return self._bounds(job)[1]

    def replica_lag_ms(self) -> int | None:
        self.s._enter("backfill_lag")
        lag = self.s.db.replica_lag
        return lag() if callable(lag) else lag

    # -- inside ---------------------------------------------------------------------------------

    def _keys(self, job: RangeJob) -> list[int]:
        table = self.s.db.state.tables[job.table.strip('"')]
        column = job.key.columns[0]
        keys = sorted(row[column] for row in table.rows)
        after = int(job.after[0]) if job.after is not None else None
        return [k for k in keys if after is None or k > after]

    def _bounds(self, job: RangeJob) -> tuple[tuple[str, ...] | None, str]:
        if len(job.key.columns) != 1:
            raise UnsupportedSQL("the fake backfills over a one-column integer key only")
        keys = self._keys(job)
        upper = (str(keys[job.batch_rows - 1]),) if len(keys) >= job.batch_rows else None
        column = f"{job.qualifier}.{job.key.columns[0]}"
        parts = [f"{column} > {job.after[0]}"] if job.after is not None else []
        parts += [f"{column} <= {upper[0]}"] if upper is not None else []
        predicate = " AND ".join(parts) or "true"
        return upper, job.template.replace("__patcher_backfill_range__", f"({predicate})")

    def _apply(self, job: RangeJob, upper: tuple[str, ...] | None) -> int:
        match = _BUMP.match(job.template)
        if match is None:
            raise UnsupportedSQL(f"the fake backfills only UPDATE t SET c = c + 1: {job.template}")
        table = self.s.db.state.tables[job.table.strip('"')]
        self.s._refuse_read_only("UPDATE")
        column, key = match["c"], job.key.columns[0]
        low = int(job.after[0]) if job.after is not None else None
        high = int(upper[0]) if upper is not None else None
        rows = 0
        for row in table.rows:
            k = row[key]
            if (low is None or k > low) and (high is None or k <= high):
                row[column] += 1
                rows += 1
        return rows

    def _save(self, job: RangeJob, upper: tuple[str, ...] | None, rows: int, ms: int) -> None:
        table = self.s.db.state.tables[self.name]
        point = job.checkpoint
        table.rows = [r for r in table.rows if r["version"] != point.version]
        if upper is None:
            change = job.change
            try:
                self.s._write(change.write, change, outcome=change.outcome, elapsed_ms=ms)
            except FakeDriverError as exc:
                raise StatementFailed(str(exc), sqlstate=exc.sqlstate, at_commit=True) from exc
            return
        row: dict[str, Any] = {
            "version": point.version,
            "checksum": point.checksum,
            "last_key": list(upper),
            "rows_done": point.rows_done + rows,
            "ranges_done": point.ranges_done + 1,
            "rows_est": point.rows_estimated,
        }
        table.rows.append(row)


class FakeBackfillHost:
    """The mixin: ``backfill()`` on the fake session, as on ``PostgresBackend``."""

    def backfill(self) -> FakeBackfill:
        return FakeBackfill(self)  # type: ignore[arg-type]
