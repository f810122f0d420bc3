"""The words of the backfill port (``patcher/engine/backfill_port.py``): a table's key, the
checkpoint of a backfill part way, one range to run and what it did."""

from __future__ import annotations

from patcher.core.models import HistoryChange
from patcher.core.record import record


@record
class BackfillKey:
    """The primary key a backfill ranges over: its columns (in key order) and their types."""

    columns: tuple[str, ...]  # empty: the table has no primary key
    types: tuple[str, ...]
    rows_estimated: int | None  # from the statistics (None: never analysed, or empty)


@record
class Checkpoint:
    """A backfill part way (a row of the checkpoint table, ``<history table>_bf``)."""

    version: int
    checksum: str
    last_key: tuple[str, ...] | None  # the last key done, as text; None: no range yet
    rows_done: int
    ranges_done: int
    rows_estimated: int | None


@record
class RangeJob:
    """One range to run: after ``after`` (None: from the start), ``batch_rows`` keys, the
    statement with the range in place of its marker, the checkpoint written with it and, when
    it is the last range, the history change recorded with it."""

    table: str
    qualifier: str
    template: str  # with patcher.sql.backfill.RANGE_MARKER in its WHERE
    key: BackfillKey
    after: tuple[str, ...] | None
    batch_rows: int
    checkpoint: Checkpoint  # as it stands before this range
    change: HistoryChange


@record
class RangeDone:
    """What a committed range did."""

    last_key: tuple[str, ...] | None  # the range's upper key; None: it was the last range
    rows: int  # rows the statement changed (or inserted, deleted)
    elapsed_ms: int

    @property
    def final(self) -> bool:
        return self.last_key is None
