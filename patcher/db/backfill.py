"""The backfill port on PostgreSQL (``patcher/engine/backfill_port.py``): the table's primary
key, the checkpoint table, one range per transaction, the replicas' lag.

The checkpoint table is ``<history table>_bf`` beside the history (``schema_migrations_bf``):
one row per backfill part way (version, checksum, last key done as text[], rows and ranges so
far), written in each range's transaction and deleted in the last one's, which records the
version in the history instead. ``_bf`` keeps the name within PostgreSQL's 63 bytes for every
history table name the configuration allows (at most 59 bytes).

One range, three round trips: ``BEGIN`` with the keyset read of the range's upper key (the
``batch_rows``-th key after the last one done, through the primary key's index); the statement
with ``(key) > (last) AND (key) <= (upper)`` in its marker's place; the checkpoint (or the
history change) with ``COMMIT``.
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
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (version) DO UPDATE SET last_key = EXCLUDED.last_key,
    rows_done = EXCLUDED.rows_done, ranges_done = EXCLUDED.ranges_done, updated_at = now()"""


class PostgresBackfill:
    """The backfill port on one session (the run's)."""

    def __init__(self, conn: psycopg.Connection[Any], history: History) -> None:
        self.conn, self.history = conn, history
        self.table = sql.Identifier(history.schema, history.table + CHECKPOINT_SUFFIX)
        self._created = False
        self._aurora: bool | None = None

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
        at_commit = False
        try:
            cur.execute("BEGIN")
            upper = self._upper(cur, job)
            cur.execute(self._statement(job, upper), prepare=False)
            rows = max(cur.rowcount, 0)
            point = job.checkpoint
            elapsed = int((time.perf_counter() - started) * 1000)
            at_commit = True
            if upper is None:
                change = job.change
                self.history.write(change.write, change, outcome=change.outcome, elapsed_ms=elapsed)
                cur.execute(
                    sql.SQL("DELETE FROM {} WHERE version = %s").format(self.table),
                    (change.version,),
                )
            else:
                cur.execute(
                    sql.SQL(_SAVE).format(table=self.table),
                    (
                        point.version,
                        point.checksum,
                        list(upper),
                        point.rows_done + rows,
                        point.ranges_done + 1,
                        point.rows_estimated,
                    ),
                )
            cur.execute("COMMIT")
        except psycopg.Error as exc:
            if not self.conn.broken:
                with suppress(psycopg.Error):
                    self.conn.execute("ROLLBACK")
            raise statement_failed(0, exc, at_commit=at_commit) from exc
        return RangeDone(upper, rows, int((time.perf_counter() - started) * 1000))

    def first_range(self, job: RangeJob) -> str:
        return self._statement(job, self._upper(self.conn.cursor(), job))

    def _upper(self, cur: psycopg.Cursor[Any], job: RangeJob) -> tuple[str, ...] | None:
        """The ``batch_rows``-th key after ``job.after`` (keyset, by the primary key's order),
        or None when fewer are left: the range then runs to the end."""
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in job.key.columns)
        texts = sql.SQL(", ").join(  # named apart: ORDER BY "id" would sort the text
            sql.SQL("{}::text AS {}").format(sql.Identifier(c), sql.Identifier(f"patcher_k{i}"))
            for i, c in enumerate(job.key.columns)
        )
        where: sql.Composable = sql.SQL("")
        if job.after is not None:
            where = sql.SQL(" WHERE ({}) > ({})").format(cols, _values(job))
        query = sql.SQL("SELECT {} FROM {}{} ORDER BY {} OFFSET {} LIMIT 1").format(
            texts, sql.SQL(job.table), where, cols, sql.Literal(job.batch_rows - 1)
        )
        row = cur.execute(query).fetchone()
        return tuple(row) if row is not None else None

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
        else:
            row = self.conn.execute(
                "SELECT count(*), max(extract(epoch FROM replay_lag) * 1000) "
                "FROM pg_stat_replication"
            ).fetchone()
        if row is None or not row[0]:
            return None
        return int(row[1] or 0)


def _values(job: RangeJob, key: tuple[str, ...] | None = None) -> sql.Composable:
    values = job.after if key is None else key
    assert values is not None
    return sql.SQL(", ").join(
        sql.SQL("{}::{}").format(sql.Literal(v), sql.SQL(t))
        for v, t in zip(values, job.key.types, strict=True)
    )
