"""The history table ``<schema>.<table>`` (one row per applied version) and its append-only
audit log ``<schema>.<table>_log`` (every attempt): creating them, refusing another tool's table
of the same name, reading them, and writing each history change together with its audit row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import pq, sql
from psycopg.rows import dict_row

from patcher.core.errors import ConfigError
from patcher.core.models import AppliedRow, HistoryChange, HistoryWrite
from patcher.db import snapshot_store

HISTORY_COLUMNS = {
    "version", "description", "checksum", "applied_at", "execution_ms", "dirty",
    "dirty_direction", "source_fingerprint", "applied_by",
}  # fmt: skip
LOG_COLUMNS = {
    "id", "at", "version", "description", "direction", "outcome", "checksum", "duration_ms",
    "error", "request_id", "invoked_by",
}  # fmt: skip

_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    version bigint PRIMARY KEY,
    description text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    execution_ms integer NOT NULL DEFAULT 0,
    dirty boolean NOT NULL DEFAULT false,
    dirty_direction text CHECK (dirty_direction IN ('up', 'down')),
    source_fingerprint text,
    applied_by text
);
CREATE TABLE IF NOT EXISTS {log} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    version bigint,
    description text,
    direction text,
    outcome text NOT NULL,
    checksum text,
    duration_ms integer,
    error text,
    request_id text,
    invoked_by text
);
"""

# Other tools' history tables by their columns, to name them when refusing one.
_KNOWN_TABLES = {
    frozenset({"version", "dirty"}): "golang-migrate",
    frozenset({"version"}): "dbmate",
}

# Every history change, written together with its audit row (see History.write_query).
_HISTORY_CHANGES = {
    HistoryWrite.INSERT: "INSERT INTO {history} (version, description, checksum, execution_ms, "
    "source_fingerprint, applied_by) VALUES (%(version)s, %(description)s, %(checksum)s, "
    "%(elapsed)s, %(fingerprint)s, %(by)s)",
    HistoryWrite.DELETE: "DELETE FROM {history} WHERE version = %(version)s",
    HistoryWrite.MARK_DIRTY_UP: "INSERT INTO {history} (version, description, checksum, dirty, "
    "dirty_direction, source_fingerprint, applied_by) VALUES (%(version)s, %(description)s, "
    "%(checksum)s, true, 'up', %(fingerprint)s, %(by)s)",
    HistoryWrite.MARK_DIRTY_DOWN: "UPDATE {history} SET dirty = true, dirty_direction = 'down' "
    "WHERE version = %(version)s",
    HistoryWrite.FINISH_UP: "UPDATE {history} SET dirty = false, dirty_direction = NULL, "
    "execution_ms = %(elapsed)s, applied_at = now() WHERE version = %(version)s",
    HistoryWrite.CLEAR_DIRTY: "UPDATE {history} SET dirty = false, dirty_direction = NULL "
    "WHERE version = %(version)s",
    HistoryWrite.RECHECKSUM: "UPDATE {history} SET checksum = %(checksum)s, "
    "source_fingerprint = %(fingerprint)s WHERE version = %(version)s",
    HistoryWrite.NONE: "SELECT",
}
_LOG_INSERT = (
    "INSERT INTO {log} (version, description, direction, outcome, checksum, duration_ms, "
    "error, request_id, invoked_by) VALUES (%(version)s, %(description)s, %(direction)s, "
    "%(outcome)s, %(checksum)s, %(elapsed)s::integer, %(error)s, %(request_id)s, %(by)s)"
)
# In a batch (several migrations in one message) the duration comes from the server's clock:
# since the later of the message's arrival and the audit row of the migration before it.
_SERVER_MS = (
    "(SELECT (extract(epoch FROM clock_timestamp() - greatest(statement_timestamp(), "
    "(SELECT at FROM {log} ORDER BY id DESC LIMIT 1))) * 1000)::integer AS ms)"
)


class History:
    """The two tables of one schema, written on one session as one requester."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        schema: str,
        table: str,
        *,
        request_id: str,
        invoked_by: str,
    ) -> None:
        self.conn = conn
        self.schema, self.table = schema, table
        self.request_id, self.invoked_by = request_id, invoked_by
        self._history = sql.Identifier(schema, table)
        self._log = sql.Identifier(schema, f"{table}_log")
        self._queries: dict[tuple[HistoryWrite, str | None], str] = {}
        self._batch_queries: dict[tuple[HistoryWrite, str | None], str] = {}
        # Whether history writes store a schema snapshot (snapshot_store.py): decided by
        # ensure_tables, so only runs that write (never an up-to-date one) pay for it.
        self.snapshots = False
        self.snapshot_note: str | None = None
        self.snapshot_only: HistoryChange | None = None  # a run's last write (snapshot_once.py)

    def ensure_tables(self) -> None:
        """Create the history and log tables on first use; refuse a table another tool made."""
        self._check_foreign_table(self.table, HISTORY_COLUMNS)
        self._check_foreign_table(f"{self.table}_log", LOG_COLUMNS)
        with self.conn.transaction():
            # CREATE SCHEMA IF NOT EXISTS checks CREATE on the database first: a runner
            # granted only USAGE and CREATE on an existing schema must never send it.
            # Quoted: to_regnamespace('Ops') would fold the name to ops (issue 26 item 9).
            schema = sql.Identifier(self.schema).as_string(self.conn)
            row = self.conn.execute("SELECT to_regnamespace(%s)", (schema,)).fetchone()
            if row is None or row[0] is None:
                self.conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
            self.conn.execute(sql.SQL(_DDL).format(table=self._history, log=self._log))
            self.snapshot_note = snapshot_store.ensure(self.conn, self.schema, self.table)
        if self.snapshot_note is None:
            self.snapshot_note = snapshot_store.probe(self.conn, self.schema, self.table)
        self.snapshots = self.snapshot_note is None

    def _check_foreign_table(self, name: str, expected: set[str]) -> None:
        rows = self.conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
            "AND attnum > 0 AND NOT attisdropped",
            (sql.Identifier(self.schema, name).as_string(self.conn),),
        ).fetchall()
        columns = {r[0] for r in rows}
        if columns and not expected <= columns:
            tool = _KNOWN_TABLES.get(frozenset(columns))
            adopt = (
                f"; to take its history over, set PATCHER_TABLE=patcher_migrations (any other "
                f"name) for every run and run 'patcher adopt --from {tool} --table "
                f"{self.schema}.{name}'"
                if tool
                else ""
            )
            raise ConfigError(
                f"table {self.schema}.{name} exists but was not made by StackFlowPatcher"
                f"{f' (it looks like {tool} history)' if tool else ''} "
                f"(columns: {', '.join(sorted(columns))}; missing: "
                f"{', '.join(sorted(expected - columns))}). It was left untouched. Point "
                f"PATCHER_SCHEMA / PATCHER_TABLE at a new table and baseline it{adopt}"
            )

    def applied_count(self, up_to: int) -> int | None:
        """Clean history rows at or below ``up_to``; None when there is no table or a dirty row."""
        try:
            row = self.conn.execute(
                sql.SQL(
                    "SELECT count(*), coalesce(bool_or(dirty), false) FROM {} WHERE version <= %s"
                ).format(self._history),
                (up_to,),
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        return None if row is None or row[1] else int(row[0])

    def read_history(self) -> list[AppliedRow]:
        """Every history row, oldest version first; empty when the table does not exist yet.

        One query: a missing table, or a table of another shape (``_check_foreign_table``
        names it), is learnt from the read's own error. Looking in the catalogs first cost a
        fresh session 1.3 ms of the server's CPU, more than the read itself, and every
        invocation pays it (16 deploys at once share the server: issue 32)."""
        read = sql.SQL(
            "SELECT version, description, checksum, applied_at, execution_ms, dirty, "
            "dirty_direction, source_fingerprint AS fingerprint, applied_by FROM {}"
        ).format(self._history)  # no ORDER BY: sorted here, 0.2 ms less for the server
        idle = self.conn.info.transaction_status == pq.TransactionStatus.IDLE
        try:
            with contextlib.nullcontext() if idle else self.conn.transaction():  # a savepoint
                rows = self.conn.cursor(row_factory=dict_row).execute(read).fetchall()
        except psycopg.errors.UndefinedTable:
            return []
        except psycopg.errors.UndefinedColumn:
            self._check_foreign_table(self.table, HISTORY_COLUMNS)
            raise
        rows.sort(key=lambda row: int(row["version"]))
        return [AppliedRow(**{k: v for k, v in row.items() if k != "applied_by"}) for row in rows]

    def record(self, records: Sequence[HistoryChange]) -> None:
        """Write history changes that run no SQL (baseline, repair) in one transaction."""
        with self.conn.transaction():
            # One snapshot, of the state they all leave: with the last change that takes one.
            takes = [
                i
                for i, r in enumerate(records)
                if self._snapshot_after(r.write, r, r.outcome, True)
            ]
            for i, rec in enumerate(records):
                last = bool(takes) and i == takes[-1]
                self.write(rec.write, rec, outcome=rec.outcome, elapsed_ms=0, snapshot=last)

    def log(
        self,
        record: HistoryChange,
        *,
        outcome: str,
        duration_ms: int | None = None,
        error: str | None = None,
    ) -> None:
        """Append one audit row alone (a failed attempt: its transaction was rolled back)."""
        self.write(HistoryWrite.NONE, record, outcome=outcome, elapsed_ms=duration_ms, error=error)

    def mark_dirty(self, record: HistoryChange) -> None:
        """Before a no-transaction script: record that it started (committed at once)."""
        up = record.direction == "up"
        change = HistoryWrite.MARK_DIRTY_UP if up else HistoryWrite.MARK_DIRTY_DOWN
        self.write(change, record, outcome="started", elapsed_ms=None)

    def finish_clean_sql(self, record: HistoryChange, elapsed_ms: int) -> str:
        """After a no-transaction script succeeded: the statement that clears the mark (or
        drops the row for down), with its audit row, as text to send with others."""
        up = record.direction == "up"
        change = HistoryWrite.FINISH_UP if up else HistoryWrite.DELETE
        return self.sql_text(change, record, outcome=record.outcome, elapsed_ms=elapsed_ms)

    def sql_text(
        self, change: HistoryWrite, record: HistoryChange, *, outcome: str, elapsed_ms: int | None
    ) -> str:
        """One ``write`` as literal SQL text, to ride in a multi-statement message."""
        query, params = self.write_query(change, record, outcome=outcome, elapsed_ms=elapsed_ms)
        return psycopg.ClientCursor(self.conn).mogrify(query, params)

    def batch_sql(self, record: HistoryChange, marker: str) -> str:
        """``record``'s write as literal SQL for a batch: its duration measured by the server
        (``_SERVER_MS``), returned as one column named ``marker``."""
        change = record.write
        after = self._snapshot_after(change, record, record.outcome, True)
        template = self._batch_queries.get((change, after))
        if template is None:
            ms = "(SELECT ms FROM elapsed)"
            text = (
                f"WITH elapsed AS {_SERVER_MS}, change AS ("
                f"{_HISTORY_CHANGES[change].replace('%(elapsed)s', ms)}){{snap}} "
                f"{_LOG_INSERT.replace('%(elapsed)s', ms)} RETURNING duration_ms AS {{marker}}"
            )
            template = self._batch_queries[(change, after)] = (
                sql.SQL(text)
                .format(
                    history=self._history,
                    log=self._log,
                    marker=sql.Identifier(marker),
                    snap=self._snapshot_cte(after),
                )
                .as_string(self.conn)
            )
        params = self.write_query(change, record, outcome=record.outcome, elapsed_ms=None)[1]
        return psycopg.ClientCursor(self.conn).mogrify(template, params)

    def write(
        self,
        change: HistoryWrite,
        record: HistoryChange,
        *,
        outcome: str,
        elapsed_ms: int | None,
        error: str | None = None,
        snapshot: bool = True,
    ) -> None:
        """One statement: the history change and its audit row, so they cannot part (and the
        schema snapshot, when the change is one that leaves a new schema)."""
        query, params = self.write_query(
            change, record, outcome=outcome, elapsed_ms=elapsed_ms, error=error, snapshot=snapshot
        )
        self.conn.execute(query, params)  # composed from the constants above and identifiers

    def write_query(
        self,
        change: HistoryWrite,
        record: HistoryChange,
        *,
        outcome: str,
        elapsed_ms: int | None,
        error: str | None = None,
        snapshot: bool = True,
    ) -> tuple[str, dict[str, Any]]:
        """The statement (compiled once per change) and parameters of one ``write``."""
        after = self._snapshot_after(change, record, outcome, snapshot)
        query = self._queries.get((change, after))
        if query is None:
            query = self._queries[(change, after)] = (
                sql.SQL(f"WITH change AS ({_HISTORY_CHANGES[change]}){{snap}} {_LOG_INSERT}")
                .format(history=self._history, log=self._log, snap=self._snapshot_cte(after))
                .as_string(self.conn)
            )
        params = {
            "version": record.version,
            "description": record.description,
            "direction": record.direction,
            "checksum": record.checksum,
            "fingerprint": record.fingerprint,
            "elapsed": elapsed_ms,
            "outcome": outcome,
            "error": error,
            "request_id": self.request_id,
            "by": self.invoked_by,
        }
        if after is not None:
            params.update(snapshot_store.snapshot_params(self.schema, self.table))
        return query, params

    def _snapshot_after(
        self, change: HistoryWrite, record: HistoryChange, outcome: str, allowed: bool
    ) -> str | None:
        """Whether this write stores a snapshot, and how it finds the version it leaves:
        every change that leaves a schema behind (a version applied, reverted or finished, a
        dirty mark cleared, a repeatable applied), never a dirty mark or a failure."""
        only = self.snapshot_only
        if not (self.snapshots and allowed) or (only is not None and record != only):
            return None
        if change is HistoryWrite.NONE:
            return "same" if record.version is None and outcome == "applied" else None
        return _SNAPSHOT_AFTER.get(change)

    def _snapshot_cte(self, after: str | None) -> sql.Composable:
        if after is None:
            return sql.SQL("")
        snp = sql.Identifier(self.schema, snapshot_store.table_name(self.table))
        return sql.SQL(", ") + snapshot_store.snapshot_cte(self._history, snp, after)


_SNAPSHOT_AFTER = {
    HistoryWrite.INSERT: "up",
    HistoryWrite.FINISH_UP: "up",
    HistoryWrite.DELETE: "down",
    HistoryWrite.CLEAR_DIRTY: "same",
}
