"""The fake's database: what every session on it shares, and the fault hooks.

``FakeDatabase`` is one database's state: its tables and indexes (the history table and the
audit log are tables too), the advisory locks and which session holds each, the read-only
default, a server clock that ``pg_sleep`` advances instead of sleeping, and the faults. Its
sessions are ``tests.fakes.backend.FakeBackend``.

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
  committed, the COMMIT-in-doubt case), ``constraint`` (23505, rolled back) or, with
  ``committed=True``, ``cancelled`` (57014 after COMMIT: a cancel that hit the lock check).
- ``db.on_call``: any callable ``(session, method)`` run at the start of every call (may act
  through other sessions, or raise).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from patcher.core.errors import DatabaseUnavailable
from tests.fakes.state import FakeClock, State

if TYPE_CHECKING:
    from tests.fakes.backend import FakeBackend


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
        self.primary_keys: dict[str, tuple[str, ...]] = {}  # the fake's CREATE TABLE has none
        self.replica_lag: int | Callable[[], int | None] | None = None  # ms; None: no replica

    # -- sessions ------------------------------------------------------------------------------

    def connect(self, **kwargs: Any) -> FakeBackend:
        from tests.fakes.backend import FakeBackend

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

    def backfill_table(self, name: str, rows: int) -> None:
        """A table ``name (id bigint PRIMARY KEY, n integer)`` with ids 1..rows, n = 0."""
        from tests.fakes.state import Table

        self.state.tables[name] = Table(
            ["id", "n"], [{"id": i, "n": 0} for i in range(1, rows + 1)]
        )
        self.primary_keys[name] = ("id",)

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
