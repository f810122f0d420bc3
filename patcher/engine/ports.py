"""The ports the engine drives: a migration source (``patcher.sources.base``) and the database,
as three protocols on one session:

- ``MigrationBackend``, what every run needs: the session, the advisory lock, the history and
  running scripts;
- ``PreviewBackend``, what dry-run previews add: table sizes, catalog facts, verify, data at
  risk (``preview.py``, ``data_at_risk.py``);
- ``ForeignHistory``, other tools' history tables (the run's check, and ``patcher adopt``).

A backend implements the first and offers the others on the same session where it can
(``preview_port``, ``foreign_port``). The engine imports only these protocols; ``patcher.db``
implements all three for PostgreSQL and ``tests/fakes`` in memory, and ``tests/contract`` holds
both to the contracts below. The words they share (``StopCheck``, ``LockHolder``,
``VerifyReport``, ``Loss``, ``ForeignState``...) are ``patcher.core``'s.

A backend is one session on one database. It is kept dumb: it locks, reads, runs and records
exactly what it is told; every decision (order, retries, deadlines, dirty marks, what to do on
a failure) is the engine's. Errors:

- a statement of a migration that fails raises ``StatementFailed`` (with its index and flags);
- anything else the driver reports (a lost session, failed bookkeeping) surfaces as a driver
  error that ``errors_translated()`` turns into ``DatabaseUnavailable``;
- refusals of the target itself (read-only, a foreign history table) are ``PatcherError``s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from patcher.core.errors import ConfigError
from patcher.core.models import (
    AppliedRow,
    Committed,
    HistoryChange,
    IndexState,
    LockHolder,
    LockState,
    StopCheck,
    VerifyReport,
)

if TYPE_CHECKING:
    from patcher.core.batch_items import BatchDone, BatchItem
    from patcher.core.catalog_port import Catalog
    from patcher.core.data_loss import Created, Loss, Probe
    from patcher.core.errors import StatementFailed
    from patcher.core.foreign_tools import ForeignState

__all__ = ["Connect", "ForeignHistory", "MigrationBackend", "PreviewBackend", "StopCheck"]


class MigrationBackend(Protocol):
    """One database session: the advisory lock, the history, and running scripts."""

    key: int
    """The advisory lock key (documented, derived from the history table's name)."""
    schema: str
    table: str
    """The history table, ``schema.table`` (its audit log is ``table_log`` beside it)."""

    # -- session ------------------------------------------------------------------------------

    def errors_translated(self) -> AbstractContextManager[None]:
        """A context in which any driver error outside ``StatementFailed`` becomes
        ``DatabaseUnavailable`` (with a message saying what is known and what to do)."""
        ...

    def close(self) -> None:
        """Release the lock if held and disconnect. Never raises."""
        ...

    def cancel(self) -> None:
        """Ask the server to cancel what this session is running now (the statement fails
        with ``StatementFailed(cancelled=True)``). Safe to call from another thread; a no-op
        when nothing runs. Never raises."""
        ...

    def restore_session(self) -> None:
        """Bring the session back to the run's own state (role, search_path, timeouts,
        application_name: what it connected with), undoing what a migration SET."""
        ...

    def check_writable(self) -> None:
        """Raise ``DatabaseUnavailable`` for a hot standby or a read-only default."""
        ...

    # -- the advisory lock --------------------------------------------------------------------

    def try_lock(self, wait_s: float = 0.0) -> bool:
        """Try once to take the run's lock; True when this session holds it.

        Must never block on the lock: a blocked waiter deadlocks against CREATE INDEX
        CONCURRENTLY. ``wait_s``: first wait up to that long, idle on the server (LISTEN: no
        statement, no snapshot), for the holder to say it let go (``unlock`` tells every
        waiter at once), then try. The first call with a wait only starts listening, so that
        a release just after the caller's last failed try is not missed."""
        ...

    def holds_lock(self) -> bool:
        """Whether this session still holds the run's lock (a migration may have released it)."""
        ...

    def unlock(self) -> None:
        """Release the run's lock and tell the sessions waiting for it (``try_lock(wait_s)``)."""
        ...

    def lock_holder(self) -> LockHolder | None:
        """The session holding the run's lock in this database, or None when it is free."""
        ...

    # -- the history --------------------------------------------------------------------------

    def ensure_tables(self) -> None:
        """Create the history and audit tables when missing. Raise ``ConfigError`` when a table
        of that name exists but another tool made it (it is left untouched)."""
        ...

    def read_history(self) -> list[AppliedRow]:
        """Every history row, oldest version first; empty when the table does not exist."""
        ...

    def applied_count(self, up_to: int) -> int | None:
        """Clean rows at or below ``up_to``; None when there is no table or a row is dirty."""
        ...

    def record(self, changes: Sequence[HistoryChange]) -> None:
        """Write history changes that run no SQL (baseline, repair), all in one transaction,
        each with its audit row."""
        ...

    def log(
        self,
        change: HistoryChange,
        *,
        outcome: str,
        duration_ms: int | None = None,
        error: str | None = None,
    ) -> None:
        """Append one audit row alone (a failed attempt, whose transaction rolled back)."""
        ...

    # -- running ------------------------------------------------------------------------------

    def run_transactional(
        self,
        statements: Sequence[str],
        change: HistoryChange,
        stop: StopCheck | None = None,
    ) -> Committed:
        """Run the statements and ``change`` (with its audit row) in one transaction.

        In the round trip of COMMIT the session is first restored (``restore_session``) so the
        history change runs in the run's own state, and after COMMIT the lock is checked and
        taken back when free (``Committed.lock``). On ``StatementFailed`` the transaction is
        rolled back: nothing of it remains, and the audit row is not written (the engine logs
        the failure). A failure of the COMMIT message itself has ``at_commit=True``; with
        ``connection_lost`` too, whether it committed is unknown (read the history)."""
        ...

    def run_batch(
        self,
        items: Sequence[BatchItem],
        start_within_ms: int | None,
        stop: StopCheck | None = None,
    ) -> BatchDone:
        """Run several transactional migrations in order in one round trip, each as
        ``run_transactional`` would (its statements, the session restore, its history change
        with its audit row, COMMIT, the lock check: exact when ``exact_lock_check``), and stop
        at the first that fails (rolled back, nothing of it remains, its audit row not
        written), at the first after which the lock is ``LOST``, or before the first that
        would start more than ``start_within_ms`` after the batch was sent (``deadline``;
        None: no limit; the first item always starts). Durations are the server's. A lost
        session is a ``failure`` with ``connection_lost``: the items from the first not
        listed as committed on may have committed (read the history), unless it is not
        ``at_commit``: then that item was running its statements and none after it started.
        ``stop`` is asked
        before anything is sent (the real backend sends all at once; the engine's cancel cuts
        it from then on) and, where a backend sends statement by statement, before each. Only
        a lost session may raise ``StatementFailed`` instead of reporting it."""
        ...

    def run_statements(self, statements: Sequence[str], stop: StopCheck | None = None) -> None:
        """Run statements one by one outside any transaction; raise ``StatementFailed`` at the
        first that fails (those before it stay done)."""
        ...

    def mark_dirty(self, change: HistoryChange) -> None:
        """Before a no-transaction script: record at once that it started (dirty mark)."""
        ...

    def finish_clean(self, change: HistoryChange, elapsed_ms: int) -> LockState:
        """After a no-transaction script succeeded: restore the session, clear the mark (up) or
        drop the row (down), then check the lock (taken back when free), in one round trip."""
        ...

    def indexes(self) -> list[IndexState]:
        """Every index outside the system schemas, with its validity (``pg_index.indisvalid``):
        a failed CREATE INDEX CONCURRENTLY leaves an INVALID one behind."""
        ...

    def drop_index(self, name: str) -> bool:
        """``DROP INDEX CONCURRENTLY IF EXISTS`` the index ``schema.name`` (autocommit); False
        when it hit lock_timeout (the transactions that blocked the build still run)."""
        ...


@runtime_checkable
class PreviewBackend(Protocol):
    """What dry-run previews read on the run's session: sizes, catalog facts, verification and
    data at risk. Each is read-only, or runs in a transaction that is always rolled back."""

    def table_sizes(self) -> dict[str, int]:
        """Estimated rows of every user table by ``schema.table`` (-1: never analysed)."""
        ...

    def catalog_facts(self) -> Catalog | None:
        """What rewrite decisions read from the catalog (column types, casts, volatility), or
        None when there is no catalog to ask (the preview then judges from the SQL alone)."""
        ...

    def verify(
        self,
        scripts: Sequence[Sequence[str]],
        lock_timeout_ms: int,
        stop: StopCheck | None = None,
    ) -> list[VerifyReport]:
        """Run each script in one transaction that is always rolled back, and report the locks
        each took and the tables it rewrote; stop at the first failure (its report carries the
        ``StatementFailed``). Nothing is left changed."""
        ...

    def estimate_at_risk(
        self,
        probes: Sequence[Probe],
        version: int,
        count_ms: int,
        budget_ms: int,
        created: Created | None = None,
    ) -> list[Loss]:
        """What a down script's probes would destroy now, in rows and values (and of them,
        those written since ``version`` was applied): each counted in at most ``count_ms``,
        all in ``budget_ms``; past either, from the statistics, marked ``estimated``. Tables
        a CASCADE or inheritance reaches are added. Read-only. What ``created`` holds (the
        version made it) is not dated: its ``since`` stays None, as every row is new."""
        ...

    def measure_at_risk(
        self,
        scripts: Sequence[Sequence[str]],
        versions: Sequence[int],
        casts: Sequence[Sequence[Probe]],
        lock_timeout_ms: int,
        stop: StopCheck | None = None,
    ) -> tuple[list[list[Loss]], StatementFailed | None]:
        """Run each down script (reverting ``versions``, in order) in one transaction that is
        always rolled back and report exactly what each destroyed in pre-existing tables; stop
        at the first failure, returned beside the losses of the scripts before it. ``casts``:
        each script's ALTER COLUMN TYPE probes. Nothing is left changed."""
        ...


@runtime_checkable
class ForeignHistory(Protocol):
    """Other tools' history tables on the run's session (``patcher.core.foreign_tools``)."""

    def other_histories(self) -> list[tuple[str, str]]:
        """Other tools' history tables that record something, by their default names, in any
        schema of the session's search_path: ``(schema.table, tool)``, nearest first."""
        ...

    def current_schema(self) -> str:
        """The session's current schema: where a tool looks for its unqualified table."""
        ...

    def read_foreign(self, tool: str, schema: str, table: str) -> ForeignState:
        """Read ``tool``'s table ``schema.table``; ``ConfigError`` when it is missing or not
        that tool's. Writes and locks nothing."""
        ...

    def holding_foreign(
        self, tool: str, schema: str, table: str
    ) -> AbstractContextManager[ForeignState]:
        """One transaction that holds ``tool``'s table in SHARE mode (the tool cannot write to
        it meanwhile) and reads it; what the block writes through this session (``record``)
        commits with it, or nothing does when the block raises."""
        ...


Connect = Callable[[], MigrationBackend]
"""Opens a new backend session; raises ``DatabaseUnavailable`` when it cannot."""


def preview_port(backend: MigrationBackend) -> PreviewBackend:
    """The preview port on the run's session, or ``ConfigError`` when the backend has none."""
    if not isinstance(backend, PreviewBackend):
        raise ConfigError(f"this database backend ({type(backend).__name__}) cannot preview")
    return backend


def foreign_port(backend: MigrationBackend) -> ForeignHistory:
    """The port to other tools' histories on the run's session, or ``ConfigError``."""
    if not isinstance(backend, ForeignHistory):
        raise ConfigError(
            f"this database backend ({type(backend).__name__}) cannot read other tools' tables"
        )
    return backend
