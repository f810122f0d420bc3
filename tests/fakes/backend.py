"""An in-memory ``MigrationBackend``: a functional fake with PostgreSQL's semantics, not a mock.

``FakeBackend(db)`` is one session on a ``FakeDatabase`` (``tests/fakes/database.py``: the
shared state, the clock and the fault hooks) and implements every ``MigrationBackend`` method as
``patcher.db`` does on PostgreSQL (``tests/contract/test_backend_contract.py`` holds both to the
same contract); the preview port (``tests/fakes/preview.py``) and the port to other tools'
histories (``tests/fakes/foreign.py``) are mixins on the same session. Statements are
interpreted by ``tests.fakes.sql`` (its docstring lists the subset). Transactions are real:
``run_transactional`` works on a copy of the state and keeps it only on commit; advisory locks
and the log's id sequence, as on the server, are outside transactions.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from patcher.core.batch_items import BatchDone, BatchItem
from patcher.core.errors import DatabaseUnavailable, StatementFailed
from patcher.core.models import (
    AppliedRow,
    Committed,
    HistoryChange,
    HistoryWrite,
    IndexState,
    LockHolder,
    LockState,
)
from tests.fakes.backfill import FakeBackfillHost
from tests.fakes.database import FakeDatabase, FakeDriverError, Fault, lock_key
from tests.fakes.foreign import FakeForeign
from tests.fakes.history import HISTORY_COLUMNS, LOG_COLUMNS, FakeHistoryRows
from tests.fakes.preview import FakePreview
from tests.fakes.sql import Interpreter, UnsupportedSQL, tokenize
from tests.fakes.state import FakeClock, Index, Table

StopCheck = Callable[[], bool]

_STATEMENT_METHODS = frozenset({"run_transactional", "run_batch", "run_statements", "verify"})


class _CancelledAfterCommit(Exception):
    """Internal: the item committed, then a cancel hit the lock check after its COMMIT."""

    def __init__(self, committed: Committed) -> None:
        super().__init__("cancelled after COMMIT")
        self.committed = committed


class FakeSession(FakeHistoryRows):
    """One session on a ``FakeDatabase``; every ``MigrationBackend`` method, as on PostgreSQL."""

    def __init__(
        self,
        db: FakeDatabase,
        *,
        application_name: str = "stackflowpatcher",
        schema: str = "public",
        table: str = "schema_migrations",
        request_id: str = "",
        invoked_by: str = "",
        user: str = "postgres",
        statement_timeout_ms: int | None = None,
    ) -> None:
        if schema != "public":
            raise UnsupportedSQL("the fake has only the public schema")
        self.db = db
        self.pid = next(db._pids)
        self.application_name = application_name[:63]
        self.schema, self.table, self.log_table = schema, table, f"{table}_log"
        self.request_id, self.invoked_by, self.user = request_id, invoked_by, user
        self.key = lock_key(schema, table)
        self.statement_timeout_ms = statement_timeout_ms
        self.since = db.clock.now().isoformat()
        self.read_only = db.state.default_read_only  # ALTER DATABASE SET: new sessions only
        self.closed = False
        self.broken = False
        self.state_name = "idle"
        self._effects: dict[str, set[Any]] | None = None  # what verify watches: locks, rewrites
        self.cancel_requested = False
        self.restores = 0
        self.listening = False  # try_lock(wait_s): LISTENs once it first waits
        db.sessions.append(self)

    # -- session ------------------------------------------------------------------------------

    @contextmanager
    def errors_translated(self) -> Iterator[None]:
        try:
            yield
        except FakeDriverError as exc:
            raise DatabaseUnavailable(
                f"the database session failed during the run: {exc}. Everything the result "
                "lists as applied or reverted is recorded (fake backend)",
                sqlstate=exc.sqlstate,
            ) from exc

    def close(self) -> None:
        if not self.closed:
            self._release_all()
            self.db.state.temp.pop(self.pid, None)
            self.closed = True

    def cancel(self) -> None:
        """Like a cancel request: the statement running (a pg_sleep) ends with 57014; a
        no-op when the session is idle, as on PostgreSQL."""
        if self.state_name == "active":
            self.cancel_requested = True

    def restore_session(self) -> None:
        self._enter("restore_session")
        self._restore()

    def _restore(self) -> None:
        """The session restore: the fake keeps no settings (SET has no effect on it); the
        migration's temporary tables end (DISCARD TEMP, SPEC 7 item 2)."""
        self.restores += 1
        self.db.state.temp.pop(self.pid, None)

    def _lock_state(self) -> LockState:
        """What the lock check after COMMIT answers: held, retaken when free, or lost."""
        if self.db.holder_pid(self.key) == self.pid:
            return LockState.HELD
        if self.db.locks.get(self.key) is None:
            self.db.locks[self.key] = (self.pid, 1)
            return LockState.RETAKEN
        return LockState.LOST

    def check_writable(self) -> None:
        self._enter("check_writable")
        if self.db.standby or self.read_only:
            why = (
                "a hot standby (read replica) in recovery"
                if self.db.standby
                else "default_transaction_read_only is on for this database or role"
            )
            raise DatabaseUnavailable(f"the database is read-only: {why}. Nothing was changed")

    # -- the advisory lock --------------------------------------------------------------------

    def try_lock(self, wait_s: float = 0.0) -> bool:
        """``wait_s``: like LISTEN, the first such call only listens; then back at once when
        the lock is free (the real holder's unlock notifies), else after ``wait_s``."""
        self._enter("try_lock")
        until = time.monotonic() + (wait_s if self.listening else 0.0)
        self.listening = self.listening or wait_s > 0
        while self.db.locks.get(self.key, (self.pid,))[0] != self.pid and time.monotonic() < until:
            time.sleep(0.001)
        held = self.db.locks.get(self.key)
        if held is None or held[0] == self.pid:
            self.db.locks[self.key] = (self.pid, (held[1] if held else 0) + 1)
            return True
        return False

    def holds_lock(self) -> bool:
        self._enter("holds_lock")
        return self.db.holder_pid(self.key) == self.pid

    def unlock(self) -> None:
        self._enter("unlock")
        held = self.db.locks.get(self.key)
        if held is not None and held[0] == self.pid:
            if held[1] > 1:
                self.db.locks[self.key] = (self.pid, held[1] - 1)
            else:
                del self.db.locks[self.key]

    def lock_holder(self) -> LockHolder | None:
        self._enter("lock_holder")
        pid = self.db.holder_pid(self.key)
        if pid is None:
            return None
        other = self.db.session(pid)
        return LockHolder(
            pid, other.application_name, other.since, other.user, "127.0.0.1", other.state_name
        )

    # -- the history --------------------------------------------------------------------------

    def ensure_tables(self) -> None:
        self._enter("ensure_tables")
        self._check_foreign(self.table, HISTORY_COLUMNS)
        self._check_foreign(self.log_table, LOG_COLUMNS)
        self._refuse_read_only("CREATE SCHEMA")  # even IF NOT EXISTS, as on the server
        tables = self.db.state.tables
        for name, columns in ((self.table, HISTORY_COLUMNS), (self.log_table, LOG_COLUMNS)):
            if name not in tables:
                tables[name] = Table(list(columns), filenode=self.db.new_filenode())
                self.db.state.indexes[f"{name}_pkey"] = Index(name, unique=True)

    def read_history(self) -> list[AppliedRow]:
        self._enter("read_history")
        if self.table not in self.db.state.tables:
            return []
        self._check_foreign(self.table, HISTORY_COLUMNS)
        return [
            AppliedRow(
                version=r["version"],
                description=r["description"],
                checksum=r["checksum"],
                applied_at=r["applied_at"],
                execution_ms=r["execution_ms"],
                dirty=r["dirty"],
                dirty_direction=r["dirty_direction"],
                fingerprint=r["source_fingerprint"],
            )
            for r in self.db.history_rows(self.table)
        ]

    def applied_count(self, up_to: int) -> int | None:
        self._enter("applied_count")
        history = self.db.state.tables.get(self.table)
        if history is None:
            return None
        rows = [r for r in history.rows if r["version"] <= up_to]
        return None if any(r["dirty"] for r in rows) else len(rows)

    def record(self, changes: Sequence[HistoryChange]) -> None:
        self._enter("record")
        with self._transaction():
            for change in changes:
                self._write(change.write, change, outcome=change.outcome, elapsed_ms=0)

    def log(
        self,
        change: HistoryChange,
        *,
        outcome: str,
        duration_ms: int | None = None,
        error: str | None = None,
    ) -> None:
        self._enter("log")
        self._write(HistoryWrite.NONE, change, outcome=outcome, elapsed_ms=duration_ms, error=error)

    # -- running ------------------------------------------------------------------------------

    def run_transactional(
        self,
        statements: Sequence[str],
        change: HistoryChange,
        stop: StopCheck | None = None,
    ) -> Committed:
        self._enter("run_transactional")
        try:
            return self._commit_one(statements, change, stop)
        except _CancelledAfterCommit:  # as run_transactional reports it: at COMMIT, cancelled
            raise StatementFailed(
                "canceling statement due to user request",
                index=len(statements),
                sqlstate="57014",
                at_commit=True,
                cancelled=True,
            ) from None

    def run_batch(
        self,
        items: Sequence[BatchItem],
        start_within_ms: int | None,
        stop: StopCheck | None = None,
    ) -> BatchDone:
        """As on PostgreSQL: each item its own transaction, in order; stop at the first that
        fails, after one that lost the lock, or before one the server-side guard refuses.
        ``db.on_call`` also sees each item start, as method ``batch_item``."""
        self._enter("run_batch")
        sent = self.db.clock.now_ms
        done = BatchDone()
        for i, item in enumerate(items):
            late = start_within_ms is not None and self.db.clock.now_ms - sent >= start_within_ms
            if i and late:
                done.deadline = True
                return done
            if self.db.on_call is not None:
                self.db.on_call(self, "batch_item")
            try:
                committed = self._commit_one(item.statements, item.change, stop)
            except StatementFailed as exc:
                done.failure = exc
                return done
            except _CancelledAfterCommit as cut:  # as BatchRunner: committed, nothing more runs
                done.committed.append(cut.committed)
                done.deadline = True
                return done
            done.committed.append(committed)
            if committed.lock is LockState.LOST:
                return done
        return done

    def _commit_one(
        self, statements: Sequence[str], change: HistoryChange, stop: StopCheck | None
    ) -> Committed:
        started = self.db.clock.now_ms
        with self._transaction():
            for index, text in enumerate(statements):
                self._statement(index, text, stop, in_transaction=True)
            elapsed = self.db.clock.now_ms - started
            self._restore()  # rides in the COMMIT message, inside the transaction
            fault = self.db._faults("commit")
            if fault is not None and fault.error == "constraint":
                raise StatementFailed(
                    "duplicate key value violates unique constraint (fake deferred constraint)",
                    index=len(statements),
                    sqlstate="23505",
                    at_commit=True,
                )
            try:
                self._write(change.write, change, outcome=change.outcome, elapsed_ms=elapsed)
            except FakeDriverError as exc:  # the history change rides with COMMIT
                raise StatementFailed(
                    str(exc), index=len(statements), sqlstate=exc.sqlstate, at_commit=True
                ) from exc
            if fault is not None and not fault.committed:  # lost before COMMIT arrived
                raise self._lost_at_commit(len(statements))
        if fault is not None and fault.error == "cancelled":  # a cancel hit the lock check
            raise _CancelledAfterCommit(Committed(elapsed, self._lock_state()))
        if fault is not None:  # the server committed, then the answer never came back
            raise self._lost_at_commit(len(statements))
        return Committed(elapsed, self._lock_state())

    def _lost_at_commit(self, index: int) -> StatementFailed:
        self._lose_session()
        return StatementFailed(
            "server closed the connection unexpectedly",
            index=index,
            at_commit=True,
            connection_lost=True,
        )

    def run_statements(self, statements: Sequence[str], stop: StopCheck | None = None) -> None:
        self._enter("run_statements")
        for index, text in enumerate(statements):
            self._statement(index, text, stop, in_transaction=False)

    def mark_dirty(self, change: HistoryChange) -> None:
        self._enter("mark_dirty")
        up = change.direction == "up"
        write = HistoryWrite.MARK_DIRTY_UP if up else HistoryWrite.MARK_DIRTY_DOWN
        self._write(write, change, outcome="started", elapsed_ms=None)

    def finish_clean(self, change: HistoryChange, elapsed_ms: int) -> LockState:
        self._enter("finish_clean")
        self._restore()
        write = HistoryWrite.FINISH_UP if change.direction == "up" else HistoryWrite.DELETE
        self._write(write, change, outcome=change.outcome, elapsed_ms=elapsed_ms)
        return self._lock_state()

    def indexes(self) -> list[IndexState]:
        self._enter("indexes")
        return [IndexState(f"public.{n}", i.valid) for n, i in self.db.state.indexes.items()]

    def drop_index(self, name: str) -> bool:
        self._enter("drop_index")
        self.db.state.indexes.pop(name.removeprefix("public."), None)
        return True

    # -- the session's machinery ----------------------------------------------------------------

    def _enter(self, method: str) -> None:
        """Every call: refuse a closed or broken session, record the call, fire faults."""
        if self.closed or self.broken:
            raise FakeDriverError("the connection is closed", sqlstate="08003")
        self.db.calls.append((self.pid, method))
        if self.db.on_call is not None:
            self.db.on_call(self, method)
        fault = self.db._faults("call", method=method)
        if fault is None:
            return
        self._lose_session()
        if fault.error == "lost" and method in _STATEMENT_METHODS:
            raise StatementFailed("server closed the connection unexpectedly", connection_lost=True)
        raise FakeDriverError("server closed the connection unexpectedly (fake fault)")

    def _lose_session(self) -> None:
        """The connection is gone: the server ends the session and frees its locks."""
        self.broken = True
        self._release_all()
        self.db.state.temp.pop(self.pid, None)  # the server ends the session's temp tables

    def _release_all(self) -> None:
        for key, (pid, _) in list(self.db.locks.items()):
            if pid == self.pid:
                del self.db.locks[key]

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT on a copy of the state: kept only when the block succeeds."""
        saved = copy.deepcopy(self.db.state)
        self.state_name = "idle in transaction"
        try:
            yield
        except BaseException:
            self.db.state = saved
            raise
        finally:
            self.state_name = "idle"

    def _refuse_read_only(self, command: str) -> None:
        if self.read_only or self.db.standby:
            raise FakeDriverError(
                f"cannot execute {command} in a read-only transaction", sqlstate="25006"
            )

    # -- statements ------------------------------------------------------------------------------

    def _statement(
        self, index: int, text: str, stop: StopCheck | None, *, in_transaction: bool
    ) -> None:
        """Run one statement; a failure is StatementFailed with ``index`` (the list's)."""
        timeout = self.statement_timeout_ms
        if stop is not None and stop():
            raise StatementFailed("cut before it was sent", index=index, cancelled=True)
        try:
            fault = self.db._faults("statement", text=text)
            if fault is not None:
                raise self._statement_fault(fault)
            self.state_name = "active"
            Interpreter(self, text, timeout, in_transaction, stop).run()
        except StatementFailed as exc:
            exc.index = index
            raise
        finally:
            self.state_name = "idle in transaction" if in_transaction else "idle"

    def _statement_fault(self, fault: Fault) -> StatementFailed:
        if fault.error == "lock_not_available":
            return StatementFailed(
                "canceling statement due to lock timeout", sqlstate="55P03", lock_not_available=True
            )
        if fault.error == "cancelled":
            return StatementFailed(
                "canceling statement due to statement timeout", sqlstate="57014", cancelled=True
            )
        if fault.error == "deadlock":
            return StatementFailed("deadlock detected", sqlstate="40P01")
        self._lose_session()
        return StatementFailed("server closed the connection unexpectedly", connection_lost=True)


class FakeBackend(FakeSession, FakePreview, FakeForeign, FakeBackfillHost):
    """A fake session with all the ports, as ``PostgresBackend`` has."""


__all__ = [
    "FakeBackend", "FakeClock", "FakeDatabase", "FakeDriverError", "FakeSession", "Fault",
    "lock_key", "tokenize",
]  # fmt: skip
