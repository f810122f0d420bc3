"""The PostgreSQL backend: lock, run, record. No policy lives here (see runner.py).

History table ``<schema>.<table>``: one row per applied version, written in the same transaction
as a transactional migration. Audit log ``<schema>.<table>_log``: every attempt, append-only.
Advisory lock key: the first 8 bytes of SHA-256 of ``stackflowpatcher:<schema>.<table>`` as a
signed big-endian bigint (see ``lock_key``); one run at a time per database, history table.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import unquote

import psycopg
import psycopg.conninfo
from psycopg import sql
from psycopg.rows import dict_row

from patcher.core.errors import ConfigError, DatabaseUnavailable, StatementFailed
from patcher.core.models import (
    AppliedRow,
    HistoryChange,
    HistoryWrite,
    LockHolder,
    VerifyReport,
)

_IDLE = psycopg.pq.TransactionStatus.IDLE

TimeoutSource = Callable[[], int | None]
"""Gives the statement timeout (ms) to set before each statement, or None for the default
(the same alias as ``patcher.engine.ports.TimeoutSource``: db/ never imports the engine)."""

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


# A dead client must not keep its backend (and so the advisory lock) alive: the server probes
# the socket during long statements (PG 14+) and both ends send TCP keepalives, so a killed
# process frees the lock within ~1 s and a vanished network path within ~1 min.
_CLIENT_CHECK_INTERVAL = "1s"
_SERVER_KEEPALIVES = (
    "-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3"
)
_CLIENT_KEEPALIVES = {
    "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3,
}  # fmt: skip


def _watch_client(conn: psycopg.Connection[Any]) -> None:
    """Ask the backend to end itself when this client goes away mid-statement (PG 14+)."""
    if conn.info.server_version < 140000:
        return
    with suppress(psycopg.errors.UndefinedObject):  # a fork without it: keepalives only
        conn.execute(
            "SELECT set_config('client_connection_check_interval', %s, false)",
            (_CLIENT_CHECK_INTERVAL,),
        )


# Other tools' history tables by their columns, to name them when refusing one.
_KNOWN_TABLES = {
    frozenset({"version", "dirty"}): "golang-migrate's",
    frozenset({"version"}): "dbmate's or Rails'",
}


def lock_key(schema: str, table: str) -> int:
    """The documented advisory lock key for a history table."""
    digest = hashlib.sha256(f"stackflowpatcher:{schema}.{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_CONNECTION_LOST = (
    psycopg.errors.AdminShutdown,  # 57P01
    psycopg.errors.CrashShutdown,  # 57P02
    psycopg.errors.CannotConnectNow,  # 57P03
    psycopg.errors.ConnectionFailure,  # 08006
    psycopg.errors.ConnectionDoesNotExist,  # 08003
    psycopg.errors.ConnectionException,  # 08000
)


def statement_failed(
    index: int, exc: psycopg.Error, *, offset: int = 0, at_commit: bool = False
) -> StatementFailed:
    """The engine's view of a driver error raised by statement ``index`` of a list.

    ``offset``: characters sent before the statement in the same message ("BEGIN;\n")."""
    diag = exc.diag
    position = int(diag.statement_position) if diag.statement_position else None
    lost = isinstance(exc, _CONNECTION_LOST) or (
        isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None
    )
    return StatementFailed(
        (diag.message_primary or str(exc)).strip(),
        index=index,
        sqlstate=exc.sqlstate,
        detail=diag.message_detail,
        hint=diag.message_hint,
        position=position - offset if position and position > offset else None,
        at_commit=at_commit,
        connection_lost=lost,
        lock_not_available=isinstance(exc, psycopg.errors.LockNotAvailable),
        cancelled=isinstance(exc, psycopg.errors.QueryCanceled),
    )


class PostgresBackend:
    """One session on the writer: the advisory lock and every write go through it."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        schema: str = "public",
        table: str = "schema_migrations",
        request_id: str = "",
        invoked_by: str = "",
    ) -> None:
        self.conn = conn
        self.schema, self.table = schema, table
        self.request_id, self.invoked_by = request_id, invoked_by
        self.key = lock_key(schema, table)
        self._history = sql.Identifier(schema, table)
        self._log = sql.Identifier(schema, f"{table}_log")
        self._locked = False
        self._queries: dict[HistoryWrite, str] = {}

    @classmethod
    def connect(
        cls,
        conninfo: str,
        *,
        application_name: str,
        lock_timeout: str = "10s",
        statement_timeout: str | None = None,
        connect_timeout: int = 10,
        sslmode: str | None = None,
        sslrootcert: str | None = None,
        **kwargs: Any,
    ) -> PostgresBackend:
        """Open an autocommit session named for the tool and request; fail within a bound."""
        options = f"-c lock_timeout={lock_timeout} {_SERVER_KEEPALIVES}"
        if statement_timeout:
            options += f" -c statement_timeout={statement_timeout}"
        params: dict[str, Any] = {
            "application_name": application_name[:63],
            "connect_timeout": connect_timeout,
            "options": options,
            **_CLIENT_KEEPALIVES,
        }
        params.update({k: v for k, v in (("sslmode", sslmode), ("sslrootcert", sslrootcert)) if v})
        try:
            conn = psycopg.connect(conninfo, autocommit=True, **params)
            _watch_client(conn)
        except psycopg.Error as exc:
            raise DatabaseUnavailable(
                f"cannot connect to PostgreSQL: {_scrub(_first_line(exc), conninfo)}; check the "
                "host, port, credentials and network path (security groups), and that "
                "PATCHER_LOCK_TIMEOUT / PATCHER_STATEMENT_TIMEOUT are valid durations"
            ) from exc
        return cls(conn, **kwargs)

    def close(self) -> None:
        """Release the lock (if held) and disconnect; never raises."""
        try:
            if self._locked and not self.conn.broken:
                self.unlock()
        except psycopg.Error:
            pass  # the session is gone, and its lock with it
        finally:
            self.conn.close()

    @staticmethod
    @contextmanager
    def errors_translated() -> Iterator[None]:
        """Turn a driver error outside a migration script (lost connection, server restart,
        failed bookkeeping) into DatabaseUnavailable, so a run always ends with a result."""
        try:
            yield
        except psycopg.Error as exc:
            raise DatabaseUnavailable(
                f"the database session failed during the run: {_first_line(exc)}. Everything "
                "the result lists as applied or reverted is recorded; a migration that was "
                "running was rolled back, or, if it was a no-transaction one, stays marked "
                "dirty (see status). The lock went with the session: run again once the "
                "database is back",
                sqlstate=exc.sqlstate,
            ) from exc

    def check_writable(self) -> None:
        """Refuse a hot standby or a read-only default before anything is written."""
        row = self.conn.execute(
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'"
        ).fetchone()
        standby, read_only = (bool(row[0]), bool(row[1])) if row else (False, False)
        if standby or read_only:
            why = (
                "a hot standby (read replica) in recovery"
                if standby
                else "default_transaction_read_only is on for this database or role"
            )
            raise DatabaseUnavailable(
                f"the database is read-only: {why}. Nothing was changed. Point "
                "PATCHER_DB_SECRET_ARN / PATCHER_DATABASE_URL at the cluster's writer endpoint"
            )

    # -- lock ---------------------------------------------------------------------------------

    def try_lock(self) -> bool:
        """One short autocommit attempt: never blocks (a blocked waiter deadlocks with CIC)."""
        row = self.conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        self._locked = bool(row and row[0])
        return self._locked

    def unlock(self) -> None:
        self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        self._locked = False

    def holds_lock(self) -> bool:
        """Whether this session still holds the run's lock (asks the server, not a flag)."""
        row = self.conn.execute(
            "SELECT EXISTS (SELECT FROM pg_locks WHERE pid = pg_backend_pid() AND granted "
            "AND locktype = 'advisory' AND objsubid = 1 AND classid = %s::bigint::oid "
            "AND objid = %s::bigint::oid)",
            _key_halves(self.key),
        ).fetchone()
        return bool(row and row[0])

    def lock_holder(self) -> LockHolder | None:
        """Who holds our advisory lock in this database, if anyone."""
        row = self.conn.execute(
            """
            SELECT a.pid, a.application_name, a.backend_start::text, a.usename::text,
                   a.client_addr::text, a.state
              FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
               AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """,
            _key_halves(self.key),
        ).fetchone()
        return LockHolder(*row) if row else None

    # -- history ------------------------------------------------------------------------------

    def ensure_tables(self) -> None:
        """Create the history and log tables on first use; refuse a table another tool made."""
        self._check_foreign_table(self.table, HISTORY_COLUMNS)
        self._check_foreign_table(f"{self.table}_log", LOG_COLUMNS)
        with self.conn.transaction():
            self.conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            self.conn.execute(sql.SQL(_DDL).format(table=self._history, log=self._log))

    def _check_foreign_table(self, name: str, expected: set[str]) -> None:
        rows = self.conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
            "AND attnum > 0 AND NOT attisdropped",
            (sql.Identifier(self.schema, name).as_string(self.conn),),
        ).fetchall()
        columns = {r[0] for r in rows}
        if columns and not expected <= columns:
            tool = _KNOWN_TABLES.get(frozenset(columns))
            raise ConfigError(
                f"table {self.schema}.{name} exists but was not made by StackFlowPatcher"
                f"{f' (it looks like {tool} history)' if tool else ''} "
                f"(columns: {', '.join(sorted(columns))}; missing: "
                f"{', '.join(sorted(expected - columns))}). It was left untouched. Point "
                "PATCHER_SCHEMA / PATCHER_TABLE at a new table and baseline it, or move the "
                "other tool's history yourself"
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
        """Every history row, oldest version first; empty when the table does not exist yet."""
        exists = self.conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (self._history.as_string(self.conn),)
        ).fetchone()
        if not (exists and exists[0]):
            return []
        self._check_foreign_table(self.table, HISTORY_COLUMNS)
        cur = self.conn.cursor(row_factory=dict_row)
        rows = cur.execute(
            sql.SQL(
                "SELECT version, description, checksum, applied_at, execution_ms, dirty, "
                "dirty_direction, source_fingerprint AS fingerprint FROM {} ORDER BY version"
            ).format(self._history)
        ).fetchall()
        return [AppliedRow(**row) for row in rows]

    # -- running --------------------------------------------------------------------------------

    def set_statement_timeout(self, ms: int | None) -> None:
        """Cap the next statements (0 or None: the session default)."""
        self.conn.execute("SELECT set_config('statement_timeout', %s, false)", (f"{ms or 0}ms",))

    def run_transactional(
        self,
        statements: Sequence[str],
        record: HistoryChange,
        timeout_ms: TimeoutSource | None = None,
    ) -> int:
        """Run every statement and the history change in one transaction; return elapsed ms.

        BEGIN travels with the first statement, the deadline's statement_timeout with each
        statement, and the history change with COMMIT (simple protocol, several statements
        per message), so n statements cost n round trips, not n + 3 (or 2n + 3 in Lambda).
        Raises SqlFailure; the transaction is then rolled back: no trace but the error."""
        started = time.perf_counter()
        cur = self.conn.cursor()
        try:
            if not statements:
                cur.execute("BEGIN")
            for index, text in enumerate(statements):
                prefix = "BEGIN;\n" if index == 0 else ""
                if timeout_ms is not None:  # the deadline's cap rides in the same message
                    prefix += f"SET statement_timeout = {int(timeout_ms() or 0)};\n"
                try:
                    cur.execute(prefix + text, prepare=False)
                except psycopg.Error as exc:
                    raise statement_failed(index, exc, offset=len(prefix)) from exc
            elapsed = _ms_since(started)
            query, params = self._write_query(
                record.write, record, outcome=record.outcome, elapsed_ms=elapsed
            )
            finish = psycopg.ClientCursor(self.conn).mogrify(query, params) + ";\nCOMMIT"
            try:
                cur.execute(finish, prepare=False)
            except psycopg.Error as exc:
                raise statement_failed(len(statements), exc, at_commit=True) from exc
        except BaseException:
            if not self.conn.broken and self.conn.info.transaction_status != _IDLE:
                with suppress(psycopg.Error):
                    self.conn.execute("ROLLBACK")
            raise
        return elapsed

    def run_statements(self, statements: Sequence[str], timeout_ms: TimeoutSource | None) -> None:
        """Run statements one by one outside any transaction (autocommit)."""
        self._run(statements, timeout_ms)

    def _run(self, statements: Sequence[str], timeout_ms: TimeoutSource | None) -> None:
        cur = self.conn.cursor()
        for index, text in enumerate(statements):
            try:
                if timeout_ms is not None:
                    self.set_statement_timeout(timeout_ms())
                cur.execute(text, prepare=False)
            except psycopg.Error as exc:
                raise statement_failed(index, exc) from exc

    def table_sizes(self) -> dict[str, int]:
        """Estimated rows of every user table, by ``schema.table`` (``-1``: never analysed)."""
        rows = self.conn.execute(
            "SELECT n.nspname || '.' || c.relname, c.reltuples::bigint FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'm') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
        ).fetchall()
        return {name: int(count) for name, count in rows}

    def verify(
        self,
        scripts: Sequence[Sequence[str]],
        lock_timeout_ms: int,
        timeout_ms: TimeoutSource | None = None,
    ) -> list[VerifyReport]:
        """Run each script in one transaction that is always rolled back; report what each did.

        Stops at the first failure (later scripts usually build on earlier ones)."""
        reports: list[VerifyReport] = []
        conn = self.conn
        try:
            conn.execute("BEGIN")
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{lock_timeout_ms}ms",))
            tables = self._relations()
            held: set[tuple[str, str]] = set()
            for statements in scripts:
                before = self._relfilenodes()
                started = time.perf_counter()
                try:
                    self._run(statements, timeout_ms)
                except StatementFailed as exc:
                    reports.append(VerifyReport(_ms_since(started), [], [], exc))
                    break
                elapsed = _ms_since(started)
                locks = self._own_locks(tables) - held
                held |= locks
                after = self._relfilenodes()
                rewritten = sorted(
                    tables[oid] for oid, node in before.items()
                    if oid in tables and after.get(oid, node) != node
                )  # fmt: skip
                reports.append(VerifyReport(elapsed, sorted(locks), rewritten, None))
        finally:
            if not conn.broken:
                conn.execute("ROLLBACK")
        return reports

    def _relations(self) -> dict[int, str]:
        """Every pre-existing user table, materialised view and index: oid -> schema.name."""
        rows = self.conn.execute(
            "SELECT c.oid::bigint, n.nspname || '.' || c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'm') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
        ).fetchall()
        return {int(oid): name for oid, name in rows}

    def _relfilenodes(self) -> dict[int, int]:
        rows = self.conn.execute(
            "SELECT oid::bigint, pg_relation_filenode(oid)::bigint FROM pg_class "
            "WHERE relkind IN ('r', 'p', 'm') AND relnamespace NOT IN "
            "('pg_catalog'::regnamespace, 'information_schema'::regnamespace)"
        ).fetchall()
        return {int(oid): int(node or 0) for oid, node in rows}

    def _own_locks(self, tables: dict[int, str]) -> set[tuple[str, str]]:
        rows = self.conn.execute(
            "SELECT relation::bigint, mode FROM pg_locks WHERE pid = pg_backend_pid() "
            "AND locktype = 'relation' AND granted AND relation IS NOT NULL"
        ).fetchall()
        return {(tables[int(rel)], mode) for rel, mode in rows if int(rel) in tables}

    def mark_dirty(self, record: HistoryChange) -> None:
        """Before a no-transaction script: record that it started (committed at once)."""
        up = record.direction == "up"
        change = HistoryWrite.MARK_DIRTY_UP if up else HistoryWrite.MARK_DIRTY_DOWN
        self._write(change, record, outcome="started", elapsed_ms=None)

    def finish_clean(self, record: HistoryChange, elapsed_ms: int) -> None:
        """After a no-transaction script succeeded: clear the mark (or drop the row for down)."""
        up = record.direction == "up"
        change = HistoryWrite.FINISH_UP if up else HistoryWrite.DELETE
        self._write(change, record, outcome=record.outcome, elapsed_ms=elapsed_ms)

    def _write_history(self, record: HistoryChange, elapsed_ms: int, outcome: str) -> None:
        self._write(record.write, record, outcome=outcome, elapsed_ms=elapsed_ms)

    def _write(
        self,
        change: HistoryWrite,
        record: HistoryChange,
        *,
        outcome: str,
        elapsed_ms: int | None,
        error: str | None = None,
    ) -> None:
        """One statement: the history change and its audit row, so they cannot part."""
        query, params = self._write_query(
            change, record, outcome=outcome, elapsed_ms=elapsed_ms, error=error
        )
        self.conn.execute(query, params)  # composed from the constants below and identifiers

    def _write_query(
        self,
        change: HistoryWrite,
        record: HistoryChange,
        *,
        outcome: str,
        elapsed_ms: int | None,
        error: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        query = self._queries.get(change)
        if query is None:
            query = self._queries[change] = (
                sql.SQL(f"WITH change AS ({_HISTORY_CHANGES[change]}) {_LOG_INSERT}")
                .format(history=self._history, log=self._log)
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
        return query, params

    def record(self, records: Sequence[HistoryChange]) -> None:
        """Write history changes that run no SQL (baseline, repair) in one transaction."""
        with self.conn.transaction():
            for rec in records:
                self._write_history(rec, 0, outcome=rec.outcome)

    def log(
        self,
        record: HistoryChange,
        *,
        outcome: str,
        duration_ms: int | None = None,
        error: str | None = None,
    ) -> None:
        """Append one audit row alone (a failed attempt: its transaction was rolled back)."""
        self._write(HistoryWrite.NONE, record, outcome=outcome, elapsed_ms=duration_ms, error=error)


# Every history change, written together with its audit row (see PostgresBackend._write).
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


def _key_halves(key: int) -> tuple[int, int]:
    """pg_locks shows a bigint advisory key as two oids: its high and low 32 bits."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


def make_conninfo(**parts: str) -> str:
    """A libpq conninfo string from its parts, quoted correctly."""
    return psycopg.conninfo.make_conninfo(**parts)


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


_URI_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^@/?#]*)@")
_KV_PASSWORD = re.compile(r"""password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s'"&]+)""")


def _scrub(text: str, conninfo: str) -> str:
    """``text`` without the password ``conninfo`` carries, however libpq echoed it.

    libpq quotes a malformed URI whole (or the token it choked on) in its error message."""
    secrets: set[str] = set()
    match = _URI_USERINFO.match(conninfo)
    if match and ":" in match[1]:
        raw = match[1].split(":", 1)[1]
        secrets |= {raw, unquote(raw)}
    for found in _KV_PASSWORD.finditer(conninfo):
        secrets |= {found[1].strip("'"), unquote(found[1])}
    with suppress(psycopg.Error):
        secrets.add(str(psycopg.conninfo.conninfo_to_dict(conninfo).get("password") or ""))
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
