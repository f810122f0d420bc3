"""An in-memory ``MigrationBackend``: a functional fake with PostgreSQL's semantics, not a mock.

``FakeDatabase`` is one database's shared state: its tables and indexes (the history table and
the audit log are tables too), the advisory locks and which session holds each, the read-only
default, a server clock that ``pg_sleep`` advances instead of sleeping, and the fault hooks.
``FakeBackend(db)`` is one session on it and implements every ``MigrationBackend`` method as
``patcher.db`` does on PostgreSQL (``tests/contract/test_backend_contract.py`` holds both to the
same contract). Statements are interpreted by ``tests.fakes.sql`` (its docstring lists the
subset). Transactions are real: ``run_transactional`` and ``verify`` work on a copy of the
state and keep it only on commit; advisory locks and the log's id sequence, as on the server,
are outside transactions.

Faults, for the engine's failure paths:

- ``db.fail_call(method=None, nth=1, times=1, error="lost")``: the nth backend call (of
  ``method``, or of any method) loses the connection: ``StatementFailed(connection_lost=True)``
  from a method that runs statements, a driver error (``FakeDriverError``, which
  ``errors_translated()`` turns into ``DatabaseUnavailable``) from any other; ``error="driver"``
  gives the driver error everywhere. The session is then broken: its transaction rolled back,
  its lock released, every later call a driver error.
- ``db.fail_statement(contains, nth=1, times=1, error="lock_not_available")``: statements
  containing ``contains`` fail (``lock_not_available`` 55P03, ``cancelled`` 57014,
  ``deadlock`` 40P01, ``lost``); with ``times`` consecutive ones, for lock_timeout retries.
- ``db.fail_commit(nth=1, error="lost", committed=False)``: the COMMIT of the nth
  ``run_transactional`` fails (``at_commit``): ``lost`` (``committed=True``: after the server
  committed, the COMMIT-in-doubt case) or ``constraint`` (23505, rolled back).
- ``db.on_call``: any callable ``(session, method)`` run at the start of every call (may act
  through other sessions, or raise).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from patcher.core.batch_items import BatchDone, BatchItem
from patcher.core.data_loss import Loss, Probe
from patcher.core.errors import ConfigError, DatabaseUnavailable, StatementFailed
from patcher.core.models import (
    AppliedRow,
    Committed,
    HistoryChange,
    HistoryWrite,
    IndexState,
    LockHolder,
    LockState,
    VerifyReport,
)
from patcher.db.foreign import TOOLS, made_by
from tests.fakes.sql import Interpreter, UnsupportedSQL, tokenize
from tests.fakes.state import FakeClock, Index, State, Table

StopCheck = Callable[[], bool]

HISTORY_COLUMNS = (
    "version", "description", "checksum", "applied_at", "execution_ms", "dirty",
    "dirty_direction", "source_fingerprint", "applied_by",
)  # fmt: skip
LOG_COLUMNS = (
    "id", "at", "version", "description", "direction", "outcome", "checksum", "duration_ms",
    "error", "request_id", "invoked_by",
)  # fmt: skip
_STATEMENT_METHODS = frozenset({"run_transactional", "run_batch", "run_statements", "verify"})


def lock_key(schema: str, table: str) -> int:
    """The documented advisory lock key (the same formula as ``patcher.db``)."""
    digest = hashlib.sha256(f"stackflowpatcher:{schema}.{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class FakeDriverError(Exception):
    """What a driver raises outside a migration statement (a lost session, failed bookkeeping)."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@dataclass
class Fault:
    """One injected failure; see the module docstring."""

    level: str  # call, statement, commit
    error: str
    method: str | None = None
    contains: str | None = None
    nth: int = 1
    times: int = 1
    committed: bool = False
    seen: int = 0
    fired: int = 0

    def matches(self) -> bool:
        """Count one matching event; whether this one fails."""
        self.seen += 1
        if self.nth <= self.seen < self.nth + self.times:
            self.fired += 1
            return True
        return False


class FakeDatabase:
    """One database: tables, history and log rows, advisory locks, read-only default, clock."""

    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.state = State()
        self.clock = FakeClock()
        self.locks: dict[int, tuple[int, int]] = {}  # key -> (holder pid, count)
        self.standby = False
        self.unreachable = False  # connect() fails: DatabaseUnavailable
        self.sessions: list[FakeBackend] = []
        self.calls: list[tuple[int, str]] = []  # (pid, method) of every backend call
        self.faults: list[Fault] = []
        self.on_call: Callable[[FakeBackend, str], None] | None = None
        self._pids = itertools.count(10001)
        self._log_ids = itertools.count(1)  # a sequence: not rolled back
        self._filenodes = itertools.count(16384)

    # -- sessions ------------------------------------------------------------------------------

    def connect(self, **kwargs: Any) -> FakeBackend:
        if self.unreachable:
            raise DatabaseUnavailable("cannot connect to PostgreSQL: connection refused (fake)")
        return FakeBackend(self, **kwargs)

    def connector(self, **kwargs: Any) -> Callable[[], FakeBackend]:
        """A ``Connect`` for the runner: each call opens a new session."""
        return lambda: self.connect(**kwargs)

    def new_filenode(self) -> int:
        """A fresh relfilenode (a new or rewritten table)."""
        return next(self._filenodes)

    def session(self, pid: int) -> FakeBackend:
        return next(s for s in self.sessions if s.pid == pid)

    # -- faults --------------------------------------------------------------------------------

    def fail_call(
        self, method: str | None = None, *, nth: int = 1, times: int = 1, error: str = "lost"
    ) -> Fault:
        return self._add(Fault("call", error, method=method, nth=nth, times=times))

    def fail_statement(
        self, contains: str = "", *, nth: int = 1, times: int = 1, error: str = "lock_not_available"
    ) -> Fault:
        return self._add(Fault("statement", error, contains=contains, nth=nth, times=times))

    def fail_commit(self, *, nth: int = 1, error: str = "lost", committed: bool = False) -> Fault:
        return self._add(Fault("commit", error, nth=nth, committed=committed))

    def _add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def _faults(self, level: str, *, method: str = "", text: str = "") -> Fault | None:
        for fault in self.faults:
            if fault.level != level:
                continue
            if fault.method is not None and fault.method != method:
                continue
            if fault.contains is not None and fault.contains.lower() not in text.lower():
                continue
            if fault.matches():
                return fault
        return None

    # -- reading the state back (test helpers) -------------------------------------------------

    def table_names(self) -> set[str]:
        return set(self.state.tables)

    def index_names(self) -> set[str]:
        return set(self.state.indexes)

    def rows(self, table: str) -> list[dict[str, Any]]:
        found = self.state.tables.get(table)
        return [dict(r) for r in found.rows] if found else []

    def history_rows(self, table: str = "schema_migrations") -> list[dict[str, Any]]:
        return sorted(self.rows(table), key=lambda r: r["version"])

    def log_rows(self, table: str = "schema_migrations") -> list[dict[str, Any]]:
        return sorted(self.rows(f"{table}_log"), key=lambda r: r["id"])

    def holder_pid(self, key: int) -> int | None:
        held = self.locks.get(key)
        return held[0] if held else None

    def methods_called(self) -> list[str]:
        return [method for _, method in self.calls]


class FakeBackend:
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
        self.table, self.log_table = table, f"{table}_log"
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

    def try_lock(self) -> bool:
        self._enter("try_lock")
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
        return self._commit_one(statements, change, stop)

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

    # -- introspection for previews -----------------------------------------------------------

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
        self, probes: Sequence[Probe], version: int, count_ms: int, budget_ms: int
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

    def _write(
        self,
        write: HistoryWrite,
        change: HistoryChange,
        *,
        outcome: str,
        elapsed_ms: int | None,
        error: str | None = None,
    ) -> None:
        """One history change and its audit row, as one statement: both or neither."""
        tables = self.db.state.tables
        for name in (self.table, self.log_table):
            if name not in tables:
                raise FakeDriverError(f'relation "public.{name}" does not exist', "42P01")
        self._refuse_read_only("INSERT")
        history = tables[self.table].rows
        now = self.db.clock.now()
        row = next((r for r in history if r["version"] == change.version), None)
        if write in (HistoryWrite.INSERT, HistoryWrite.MARK_DIRTY_UP):
            if row is not None:
                raise FakeDriverError(
                    'duplicate key value violates unique constraint "schema_migrations_pkey"',
                    "23505",
                )
            dirty = write is HistoryWrite.MARK_DIRTY_UP
            history.append(
                {
                    "version": change.version,
                    "description": change.description,
                    "checksum": change.checksum,
                    "applied_at": now,
                    "execution_ms": 0 if dirty else elapsed_ms,
                    "dirty": dirty,
                    "dirty_direction": "up" if dirty else None,
                    "source_fingerprint": change.fingerprint,
                    "applied_by": self.invoked_by,
                }
            )
        elif write is HistoryWrite.DELETE:
            history[:] = [r for r in history if r["version"] != change.version]
        elif row is not None and write is HistoryWrite.MARK_DIRTY_DOWN:
            row.update(dirty=True, dirty_direction="down")
        elif row is not None and write is HistoryWrite.FINISH_UP:
            row.update(dirty=False, dirty_direction=None, execution_ms=elapsed_ms, applied_at=now)
        elif row is not None and write is HistoryWrite.CLEAR_DIRTY:
            row.update(dirty=False, dirty_direction=None)
        elif row is not None and write is HistoryWrite.RECHECKSUM:
            row.update(checksum=change.checksum, source_fingerprint=change.fingerprint)
        tables[self.log_table].rows.append(
            {
                "id": next(self.db._log_ids),
                "at": now,
                "version": change.version,
                "description": change.description,
                "direction": change.direction,
                "outcome": outcome,
                "checksum": change.checksum,
                "duration_ms": elapsed_ms,
                "error": error,
                "request_id": self.request_id,
                "invoked_by": self.invoked_by,
            }
        )

    def _check_foreign(self, name: str, expected: Sequence[str]) -> None:
        found = self.db.state.tables.get(name)
        if found is not None and not set(expected) <= set(found.columns):
            raise ConfigError(
                f"table public.{name} exists but was not made by StackFlowPatcher (columns: "
                f"{', '.join(sorted(found.columns))}). It was left untouched"
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


__all__ = ["FakeBackend", "FakeClock", "FakeDatabase", "FakeDriverError", "Fault", "tokenize"]
