"""The backfill port on PostgreSQL (``patcher/engine/backfill_port.py``): the table's primary
key, the checkpoint table, one range per transaction, the replicas' lag.

The checkpoint table is ``<history table>_bf`` beside the history (``schema_migrations_bf``):
one row per backfill part way (version, checksum, last key done as text[], rows and ranges so
far), written in each range's transaction and deleted in the last one's, which records the
version in the history instead. ``_bf`` keeps the name within PostgreSQL's 63 bytes for every
history table name the configuration allows (at most 59 bytes).

One range, two round trips: ``BEGIN`` with the statement, ``(key) > (last) AND (key) <= (upper)``
in its marker's place; then the checkpoint (the rows the statement changed counted in it), the
keyset read of the next range's upper key (the ``batch_rows``-th key after this one's, through
the primary key's index) and ``COMMIT``. The first range of a session reads its upper key on its
own first; the last range (to the end of the key) has the history change in place of the
checkpoint. A range that fails reads its bounds afresh when retried. (One round trip, the
statement counted by a ``RETURNING 1`` in a CTE of the checkpoint write, cost the server more
CPU per range than the round trip it saves: docs/backfills.md, "Round trips per range".)
"""

from __future__ import annotations

import time
from contextlib import suppress
from typing import Any

import psycopg
from psycopg import sql

from patcher.core.backfill import BackfillKey, Checkpoint, RangeDone, RangeJob
from patcher.core.errors import StatementFailed
from patcher.core.models import StopCheck
from patcher.db.execution import statement_failed
from patcher.db.history import History

CHECKPOINT_SUFFIX = "_bf"
_RANGE_MARKER = "__patcher_backfill_range__"  # patcher.sql.backfill.RANGE_MARKER (db: core only)

_KEY = """
SELECT c.oid IS NOT NULL, c.reltuples::bigint,
       array(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n),
       array(SELECT format_type(a.atttypid, a.atttypmod) FROM unnest(i.indkey)
             WITH ORDINALITY k(attnum, n) JOIN pg_attribute a
             ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n)
FROM (SELECT to_regclass(%s) AS oid) r LEFT JOIN pg_class c ON c.oid = r.oid
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
"""
_CREATE = """
CREATE TABLE IF NOT EXISTS {table} (
    version bigint PRIMARY KEY,
    checksum text NOT NULL,
    last_key text[],
    rows_done bigint NOT NULL,
    ranges_done integer NOT NULL,
    rows_estimated bigint,
    updated_at timestamptz NOT NULL DEFAULT now()
)"""
_SAVE = """
INSERT INTO {table} (version, checksum, last_key, rows_done, ranges_done, rows_estimated)
VALUES ({version}, {checksum}, {key}, {rows}, {ranges}, {estimated})
ON CONFLICT (version) DO UPDATE SET last_key = EXCLUDED.last_key,
    rows_done = EXCLUDED.rows_done, ranges_done = EXCLUDED.ranges_done, updated_at = now()"""


class PostgresBackfill:
    """The backfill port on one session (the run's)."""

    def __init__(self, conn: psycopg.Connection[Any], history: History) -> None:
        self.conn, self.history = conn, history
        self.table = sql.Identifier(history.schema, history.table + CHECKPOINT_SUFFIX)
        self._created = False
        self._aurora: bool | None = None
        self._commits: list[tuple[int, float]] | None = None  # (WAL position, when) per range
        # the next range's upper key, read in the message of the range before: (_place, key)
        self._ahead: tuple[_Place, tuple[str, ...] | None] | None = None

    def key_of(self, table: str) -> BackfillKey | None:
        row = self.conn.execute(_KEY, (table,)).fetchone()
        assert row is not None
        exists, reltuples, columns, types = row
        if not exists:
            return None
        estimated = reltuples if reltuples and reltuples > 0 else self._count(table)
        return BackfillKey(tuple(columns or ()), tuple(types or ()), estimated)

    def _count(self, table: str) -> int | None:
        """An exact count when the statistics have none (never analysed), if quick."""
        try:
            with self.conn.transaction():
                self.conn.execute("SET LOCAL statement_timeout = 2000")
                row = self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        except psycopg.errors.QueryCanceled:
            return None
        return int(row[0]) if row else None

    def checkpoint(self, version: int) -> Checkpoint | None:
        name = self.table.as_string(self.conn)
        found = self.conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
        if not found or not found[0]:
            return None
        query = sql.SQL(
            "SELECT version, checksum, last_key, rows_done, ranges_done, rows_estimated "
            "FROM {} WHERE version = %s"
        ).format(self.table)
        row = self.conn.execute(query, (version,)).fetchone()
        if row is None:
            return None
        last = tuple(row[2]) if row[2] is not None else None
        return Checkpoint(row[0], row[1], last, row[3], row[4], row[5])

    def run_range(self, job: RangeJob, stop: StopCheck | None = None) -> RangeDone:
        if stop is not None and stop():
            raise StatementFailed("cut by the Lambda deadline before it was sent", cancelled=True)
        if not self._created:
            self.conn.execute(sql.SQL(_CREATE).format(table=self.table))
            self._created = True
        started = time.perf_counter()
        cur = self.conn.cursor()
        ahead, self._ahead = self._ahead, None  # a failed range reads its bounds afresh
        at_commit = False
        try:
            if ahead is not None and ahead[0] == _place(job, job.after):
                upper = ahead[1]
            else:  # the first range of this session: its upper key, on its own
                upper = self._upper(cur, job)
            at_commit = True  # from here, COMMIT rides in the range's last message
            if upper is None:
                rows = self._last_range(cur, job, started)
            else:
                rows, after_next = self._range(cur, job, upper)
                self._ahead = (_place(job, upper), after_next)
        except psycopg.Error as exc:
            if not self.conn.broken:
                with suppress(psycopg.Error):
                    self.conn.execute("ROLLBACK")
            raise statement_failed(0, exc, at_commit=at_commit) from exc
        if self._commits is not None:  # replicas are watched: where this range's WAL ends
            with suppress(psycopg.Error):  # committed: a failure here is the next call's
                row = cur.execute("SELECT pg_current_wal_lsn()::text").fetchone()
                self._commits.append((_lsn(row[0]) if row else 0, time.monotonic()))
        return RangeDone(upper, rows, int((time.perf_counter() - started) * 1000))

    def _range(
        self, cur: psycopg.Cursor[Any], job: RangeJob, upper: tuple[str, ...]
    ) -> tuple[int, tuple[str, ...] | None]:
        """A range that is not the last, in two round trips: ``BEGIN`` and the statement; the
        checkpoint write, the next range's upper key, ``COMMIT``. (rows, next upper key)"""
        cur.execute(f"BEGIN;\n{self._statement(job, upper)}", prepare=False)
        cur.nextset()
        rows = max(cur.rowcount, 0)
        point = job.checkpoint
        save = sql.SQL(_SAVE).format(
            table=self.table,
            version=sql.Literal(point.version),
            checksum=sql.Literal(point.checksum),
            key=sql.Literal(list(upper)),
            rows=sql.Literal(point.rows_done + rows),
            ranges=sql.Literal(point.ranges_done + 1),
            estimated=sql.Literal(point.rows_estimated),
        )
        ahead = self._upper_query(job, upper)
        cur.execute(f"{save.as_string(self.conn)};\n{ahead};\nCOMMIT", prepare=False)
        cur.nextset()  # the checkpoint's empty result, then the upper key's
        found = cur.fetchone()
        while cur.nextset():  # COMMIT's
            pass
        return rows, tuple(found) if found is not None else None

    def _last_range(self, cur: psycopg.Cursor[Any], job: RangeJob, started: float) -> int:
        """The last range (to the end of the key): the statement, then the history change in
        place of the checkpoint, with COMMIT. Two round trips, once per backfill."""
        cur.execute(f"BEGIN;\n{self._statement(job, None)}", prepare=False)
        cur.nextset()
        rows = max(cur.rowcount, 0)
        change = job.change
        elapsed = int((time.perf_counter() - started) * 1000)
        write = self.history.sql_text(
            change.write, change, outcome=change.outcome, elapsed_ms=elapsed
        )
        forget = sql.SQL("DELETE FROM {} WHERE version = {}").format(
            self.table, sql.Literal(change.version)
        )
        cur.execute(f"{write};\n{forget.as_string(self.conn)};\nCOMMIT", prepare=False)
        return rows

    def first_range(self, job: RangeJob) -> str:
        return self._statement(job, self._upper(self.conn.cursor(), job))

    def _upper(self, cur: psycopg.Cursor[Any], job: RangeJob) -> tuple[str, ...] | None:
        """The ``batch_rows``-th key after ``job.after`` (keyset, by the primary key's order),
        or None when fewer are left: the range then runs to the end."""
        row = cur.execute(self._upper_query(job, job.after), prepare=False).fetchone()
        return tuple(row) if row is not None else None

    def _upper_query(self, job: RangeJob, after: tuple[str, ...] | None) -> str:
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in job.key.columns)
        names = [sql.Identifier(f"patcher_k{i}") for i in range(len(job.key.columns))]
        inner = sql.SQL(", ").join(  # named apart: ORDER BY a text "id" would sort the text
            sql.SQL("{} AS {}").format(sql.Identifier(c), n)
            for c, n in zip(job.key.columns, names, strict=True)
        )
        texts = sql.SQL(", ").join(
            _as_text(n, t) for n, t in zip(names, job.key.types, strict=True)
        )
        where: sql.Composable = sql.SQL("")
        if after is not None:
            where = sql.SQL(" WHERE ({}) > ({})").format(cols, _values(job, after))
        query = sql.SQL(  # the text cast outside: only for the one row kept, not those skipped
            "SELECT {} FROM (SELECT {} FROM {}{} ORDER BY {} OFFSET {} LIMIT 1) AS patcher_upper"
        ).format(texts, inner, sql.SQL(job.table), where, cols, sql.Literal(job.batch_rows - 1))
        return query.as_string(self.conn)

    def _statement(self, job: RangeJob, upper: tuple[str, ...] | None) -> str:
        cols = sql.SQL(", ").join(
            sql.SQL("{}.{}").format(sql.SQL(job.qualifier), sql.Identifier(c))
            for c in job.key.columns
        )
        parts = []
        if job.after is not None:
            parts.append(sql.SQL("({}) > ({})").format(cols, _values(job)))
        if upper is not None:
            parts.append(sql.SQL("({}) <= ({})").format(cols, _values(job, upper)))
        predicate = sql.SQL(" AND ").join(parts).as_string(self.conn) if parts else "true"
        return job.template.replace(_RANGE_MARKER, f"({predicate})")

    def replica_lag_ms(self) -> int | None:
        """The replicas' lag: on Aurora, ``replica_lag_in_msec``; elsewhere the larger of
        ``replay_lag`` and the age of the oldest range this session committed that a replica
        has not replayed (``replay_lag`` alone only says how late the last replayed WAL was:
        it stays low, or NULL, while ranges committed since wait unreplayed)."""
        if self._aurora is None:
            row = self.conn.execute(
                "SELECT to_regproc('aurora_replica_status') IS NOT NULL"
            ).fetchone()
            self._aurora = bool(row and row[0])
        if self._aurora:
            row = self.conn.execute(
                "SELECT count(*), max(replica_lag_in_msec) FROM aurora_replica_status() "
                "WHERE session_id <> 'MASTER_SESSION_ID'"
            ).fetchone()
            if row is None or not row[0]:
                return None
            return int(row[1] or 0)
        replicas = self.conn.execute(  # NULL positions: not this role's to see (pg_monitor)
            "SELECT replay_lsn::text, extract(epoch FROM replay_lag) * 1000 "
            "FROM pg_stat_replication WHERE replay_lsn IS NOT NULL"
        ).fetchall()
        if not replicas:
            self._commits = None
            return None
        if self._commits is None:
            self._commits = []  # from now on, each committed range's WAL position is kept
        now, lag = time.monotonic(), 0.0
        behind = min((_lsn(r[0]) for r in replicas), default=0)
        self._commits = [(lsn, at) for lsn, at in self._commits if lsn > behind]
        if self._commits:
            lag = (now - self._commits[0][1]) * 1000
        return int(max([lag] + [float(r[1] or 0) for r in replicas]))


def _lsn(text: str | None) -> int:
    """A pg_lsn's text (``16/B374D848``) as a number; 0 for NULL."""
    if not text:
        return 0
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


_Place = tuple[int, str, int, tuple[str, ...] | None]


def _place(job: RangeJob, after: tuple[str, ...] | None) -> _Place:
    """Which range an upper key read ahead belongs to: version, table, size, the key before."""
    return (job.checkpoint.version, job.table, job.batch_rows, after)


def _as_text(column: sql.Identifier, type_name: str) -> sql.Composable:
    """A key's text as the checkpoint keeps it. Dates and timestamps in ISO 8601 (JSON's
    form): a ``::text`` follows the session's DateStyle (``SQL, DMY`` writes 05/03/2026), and a
    run resuming under another DateStyle (a Lambda, then a CLI with PGDATESTYLE) would read
    another day; ISO 8601 reads alike under every DateStyle."""
    if type_name == "date" or type_name.startswith("timestamp"):
        return sql.SQL("to_json({}) #>> '{{}}'").format(column)
    return sql.SQL("{}::text").format(column)


def _values(job: RangeJob, key: tuple[str, ...] | None = None) -> sql.Composable:
    values = job.after if key is None else key
    assert values is not None
    return sql.SQL(", ").join(
        sql.SQL("{}::{}").format(sql.Literal(v), sql.SQL(t))
        for v, t in zip(values, job.key.types, strict=True)
    )
