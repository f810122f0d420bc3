"""``PostgresBackend``: the engine's ``MigrationBackend`` on one PostgreSQL session.

It locks, runs and records what it is told; order, retries, deadlines and dirty marks are the
engine's (``patcher/engine/runner.py``). Each method hands its work to one module of this
package, which takes the connection: ``connection`` (opening, errors), ``advisory_lock``,
``history``, ``execution``, ``introspection`` and ``foreign``. It implements the three ports
of ``patcher/engine/ports.py`` on that one session: ``MigrationBackend``, ``PreviewBackend``
and ``ForeignHistory`` (their methods import their modules lazily: a run that needs no preview
loads none of it). The only state kept here is the session, the
lock key and whether this session took the lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import psycopg

from patcher.core.errors import DatabaseUnavailable, StatementFailed
from patcher.core.models import (
    AppliedRow,
    Committed,
    HistoryChange,
    IndexState,
    LockHolder,
    LockState,
)
from patcher.db import advisory_lock, connection
from patcher.db.backend_preview import PreviewQueries
from patcher.db.history import History
from patcher.db.reach import Reach, Writer, writer_of

if TYPE_CHECKING:
    from patcher.core.batch_items import BatchDone, BatchItem
    from patcher.core.foreign_tools import ForeignState
    from patcher.core.models import StopCheck
    from patcher.core.schema_drift import DriftReading
    from patcher.db.backfill import PostgresBackfill
    from patcher.db.batch_message import BatchRunner


class PostgresBackend(PreviewQueries):
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
        self.key = advisory_lock.lock_key(schema, table)
        self._history = History(conn, schema, table, request_id=request_id, invoked_by=invoked_by)
        self._locked = False
        self._listening = False  # LISTENs for the lock's release once it first waits
        self._restore = connection.restore_sql(conn)
        self._lock_check = advisory_lock.check_and_retake(self.key)
        self._retake = advisory_lock.retake(self.key)
        self._writer: Writer | None = None  # what ``connect``'s probe found
        self._batch: BatchRunner | None = None  # made by the first batch: not on up-to-date runs

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
        iam_auth: bool = False,
        reach: Reach | None = None,
        **kwargs: Any,
    ) -> PostgresBackend:
        """Open an autocommit session named for the tool and request, as ``reach`` says (one
        attempt by default): every attempt fails within ``connect_timeout``."""

        def attempt(timeout: int) -> psycopg.Connection[Any] | connection.ConnectFailure:
            return connection.attempt(
                conninfo,
                application_name=application_name,
                lock_timeout=lock_timeout,
                statement_timeout=statement_timeout,
                connect_timeout=timeout,
                sslmode=sslmode,
                sslrootcert=sslrootcert,
                iam_auth=iam_auth,
            )

        def fail(failure: connection.ConnectFailure, tried: str) -> DatabaseUnavailable:
            return connection.unavailable(
                failure, tried=tried, sslmode=sslmode, sslrootcert=sslrootcert, iam_auth=iam_auth
            )

        conn, writer = (reach or Reach()).open(attempt, fail, connect_timeout)
        backend = cls(conn, **kwargs)
        backend._writer = writer
        return backend

    # -- session ------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the lock (if held: every level, then tell the waiters) and disconnect;
        never raises."""
        try:
            if self._locked and not self.conn.broken:
                advisory_lock.release(self.conn, self.key)
                self._locked = False
        except psycopg.Error:
            pass  # the session is gone, and its lock with it
        finally:
            self.conn.close()

    def cancel(self) -> None:
        connection.cancel(self.conn)

    def restore_session(self) -> None:
        self.conn.execute(self._restore, prepare=False)

    @staticmethod
    def errors_translated() -> AbstractContextManager[None]:
        """Turn a driver error outside a migration script into DatabaseUnavailable."""
        return connection.errors_translated()

    def check_writable(self) -> None:
        """The probe at connect time said what the server is (``patcher.db.reach``): a
        session never turns from a writer into a reader (a failover ends it)."""
        if self._writer is None:
            self._writer = writer_of(self.conn)
        if not self._writer.writable:
            raise self._writer.refusal()

    # -- lock ---------------------------------------------------------------------------------

    def try_lock(self, wait_s: float = 0.0) -> bool:
        if wait_s > 0 and self._listening:
            advisory_lock.wait_release(self.conn, wait_s)
        elif wait_s > 0:  # the first wait: listen, then try at once
            advisory_lock.listen(self.conn, self.key)
            self._listening = True
        self._locked = advisory_lock.try_lock(self.conn, self.key)
        return self._locked

    def unlock(self) -> None:
        advisory_lock.unlock(self.conn, self.key)
        self._locked = False

    def holds_lock(self) -> bool:
        return advisory_lock.holds_lock(self.conn, self.key)

    def repeatables(self) -> dict[str, str]:
        """Each repeatable script's last applied checksum (``patcher/db/repeatable_log.py``)."""
        from patcher.db.repeatable_log import recorded

        return recorded(self.conn, self.schema, self.table)

    def lock_holder(self) -> LockHolder | None:
        return advisory_lock.lock_holder(self.conn, self.key)

    # -- history ------------------------------------------------------------------------------

    def ensure_tables(self) -> None:
        self._history.ensure_tables()

    def read_history(self) -> list[AppliedRow]:
        return self._history.read_history()

    def applied_count(self, up_to: int) -> int | None:
        return self._history.applied_count(up_to)

    # -- other tools' histories (the ForeignHistory port) --------------------------------------

    def other_histories(self) -> list[tuple[str, str]]:
        from patcher.db.foreign import on_search_path  # only when our history is empty

        return on_search_path(self.conn, (self.schema, self.table))

    def current_schema(self) -> str:
        from patcher.db.foreign import current_schema  # adopt only

        return current_schema(self.conn, self.schema)

    def read_foreign(self, tool: str, schema: str, table: str) -> ForeignState:
        from patcher.db.foreign import read_foreign

        return read_foreign(self.conn, tool, schema, table)

    def holding_foreign(
        self, tool: str, schema: str, table: str
    ) -> AbstractContextManager[ForeignState]:
        from patcher.db.foreign import holding_foreign

        return holding_foreign(self.conn, tool, schema, table)

    # -- history (continued) -------------------------------------------------------------------

    def record(self, records: Sequence[HistoryChange]) -> None:
        self._history.record(records)

    def log(
        self,
        record: HistoryChange,
        *,
        outcome: str,
        duration_ms: int | None = None,
        error: str | None = None,
    ) -> None:
        self._history.log(record, outcome=outcome, duration_ms=duration_ms, error=error)

    def held_since(self, version: int) -> str | None:
        """The alias version live when ``version`` was first held (``release_log``)."""
        from patcher.db.release_log import held_since

        return held_since(self.conn, self._history._log, version)

    def mark_dirty(self, record: HistoryChange) -> None:
        self._history.mark_dirty(record)

    def finish_clean(self, record: HistoryChange, elapsed_ms: int) -> LockState:
        """Restore the session, clear the mark, check the lock: one round trip."""
        from patcher.db import execution  # loads with the first statement run

        connection.encoding_restored(self.conn, self._restore)
        text = self._history.finish_clean_sql(record, elapsed_ms)
        cur = self.conn.cursor()
        cur.execute(f"{self._restore}{text};\n{self._lock_check}", prepare=False)
        return self._lock_state(execution.last_value(cur))

    def _lock_state(self, answer: str) -> LockState:
        state = LockState(answer)
        self._locked = state is not LockState.LOST
        return state

    # -- running ------------------------------------------------------------------------------

    def run_transactional(
        self,
        statements: Sequence[str],
        record: HistoryChange,
        stop: StopCheck | None = None,
    ) -> Committed:
        """Run the statements and ``record`` (with its audit row) in one transaction; the
        session restore, the history write, COMMIT and the lock check share one message."""
        check = self._lock_check if advisory_lock.may_release(statements) else self._retake

        def finish_sql(elapsed_ms: int) -> str:
            connection.encoding_restored(self.conn, self._restore)
            write = self._history.sql_text(
                record.write, record, outcome=record.outcome, elapsed_ms=elapsed_ms
            )
            return f"{self._restore}{write};\nCOMMIT;\n{check}"

        from patcher.db import execution  # loads with the first statement run

        elapsed, answer = execution.run_transactional(self.conn, statements, finish_sql, stop)
        return Committed(elapsed, self._lock_state(answer))

    def run_batch(
        self,
        items: Sequence[BatchItem],
        start_within_ms: int | None,
        stop: StopCheck | None = None,
    ) -> BatchDone:
        """Several transactional migrations in one message, each its own transaction."""
        from patcher.core.batch_items import BatchDone
        from patcher.db.batch_message import BatchRunner

        if stop is not None and stop():
            cut = StatementFailed("cut by the Lambda deadline before it was sent", cancelled=True)
            return BatchDone(failure=cut)
        if self._batch is None:
            self._batch = BatchRunner(self.conn, self._history, self._restore, self.key)
        done = self._batch.run(items, start_within_ms)
        if done.committed:
            self._lock_state(done.committed[-1].lock.value)
        return done

    def backfill(self) -> PostgresBackfill:
        """The backfill port on this session (``patcher/engine/backfill_port.py``)."""
        from patcher.db.backfill import PostgresBackfill  # backfill versions only

        return PostgresBackfill(self.conn, self._history)

    def run_statements(self, statements: Sequence[str], stop: StopCheck | None = None) -> None:
        from patcher.db import execution  # loads with the first statement run

        execution.run_statements(self.conn, statements, stop)

    def indexes(self) -> list[IndexState]:
        from patcher.db import introspection  # no-transaction scripts and previews only

        return introspection.indexes(self.conn)

    def drop_index(self, name: str) -> bool:
        from patcher.db import introspection

        return introspection.drop_index(self.conn, name)

    # -- schema snapshots (engine/drift_check.py's SchemaSnapshots port) -----------------------

    def schema_drift(self, ignore: Sequence[str]) -> DriftReading:
        from patcher.db.snapshot_store import read_drift  # drift and schema-changing runs only

        return read_drift(self.conn, self.schema, self.table, ignore)

    def snapshot_note(self) -> str | None:
        return self._history.snapshot_note

    # engine/snapshot_once.py's OneSnapshot port: one snapshot per run
    def snapshot_only_with(self, last: HistoryChange | None) -> None:
        self._history.snapshot_only = last

    def store_snapshot(self) -> str | None:
        if not self._history.snapshots:
            return None  # the run already warned why none is stored (snapshot_note)
        from patcher.db.snapshot_store import store_now

        return store_now(self.conn, self.schema, self.table, self._restore, self._locked)
