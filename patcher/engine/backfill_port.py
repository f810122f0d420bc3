"""The backfill port (SPEC section 12): what a ``-- patcher:backfill`` version asks of the
database, on the run's session. A small port of its own rather than more ``MigrationBackend``
methods; a backend offers it through ``backfill()`` (``backfill_port`` below).

Each range is one transaction: the upper key of the range (keyset: the ``batch_rows``-th key
after the last one done), the statement over that key range, the checkpoint row (the last key
done, rows and ranges so far), and with the last range the history change and its audit row in
place of the checkpoint; then COMMIT. A range that fails is rolled back whole: nothing of it,
its checkpoint included, remains, so it can be run again and never runs twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from patcher.core.errors import ConfigError

if TYPE_CHECKING:
    from patcher.core.backfill import BackfillKey, Checkpoint, RangeDone, RangeJob
    from patcher.core.models import StopCheck
    from patcher.engine.ports import MigrationBackend


class BackfillPort(Protocol):
    def key_of(self, table: str) -> BackfillKey | None:
        """The primary key of ``table`` (as written in the script, resolved by the session's
        search_path) and its estimated rows; None when there is no such table. Reads only."""
        ...

    def checkpoint(self, version: int) -> Checkpoint | None:
        """The checkpoint of ``version``'s backfill part way, or None (none started, or the
        checkpoint table does not exist yet). Reads only."""
        ...

    def run_range(self, job: RangeJob, stop: StopCheck | None = None) -> RangeDone:
        """Run one range in its own transaction with its checkpoint (see above); creates the
        checkpoint table first when missing. ``StatementFailed`` when it fails (rolled back;
        ``at_commit`` and ``connection_lost``: whether it committed is unknown, read the
        checkpoint)."""
        ...

    def first_range(self, job: RangeJob) -> str:
        """The statement of ``job``'s range as text with literal bounds (for ``verify``)."""
        ...

    def replica_lag_ms(self) -> int | None:
        """The largest replay lag of the replicas in ms (``pg_stat_replication``, or
        ``aurora_replica_status()`` where that exists); None when no replica is seen."""
        ...


@runtime_checkable
class BackfillHost(Protocol):
    def backfill(self) -> BackfillPort:
        """The backfill port on this session."""
        ...


def backfill_port(backend: MigrationBackend) -> BackfillPort:
    """The backfill port on the run's session, or ``ConfigError`` when the backend has none."""
    if not isinstance(backend, BackfillHost):
        raise ConfigError(f"this database backend ({type(backend).__name__}) cannot backfill")
    return backend.backfill()
