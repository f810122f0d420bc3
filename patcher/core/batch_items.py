"""What the engine hands a backend to run several transactional migrations in one round trip,
and what the backend reports back (``MigrationBackend.run_batch``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field

from patcher.core.errors import StatementFailed
from patcher.core.models import Committed, HistoryChange
from patcher.core.record import mutable_record, record


@record
class BatchItem:
    """One transactional migration of a batch: its whole text, where each statement starts in
    it (to map a server's error position back), the statements themselves and its history
    change. (Which lock check follows it is the backend's call, as for ``run_transactional``.)"""

    text: str
    starts: Sequence[int]
    statements: Sequence[str]
    change: HistoryChange


@mutable_record
class BatchDone:
    """How far a batch got: ``committed`` holds one ``Committed`` per item that committed, in
    order (server-clock durations). Then at most one of:

    - ``failure``: item ``len(committed)`` failed and was rolled back (its index and position
      are within that item's statements, as ``run_transactional`` reports them); with
      ``connection_lost`` the items from ``len(committed)`` on may or may not have committed:
      only the history can tell;
    - ``deadline``: the server refused to start item ``len(committed)`` because the time given
      (``start_within_ms``) had passed; nothing of it ran;
    - the last committed item's ``lock`` is ``LOST``: nothing after it was started.
    Items after the one where the batch stopped were not run."""

    committed: list[Committed] = field(default_factory=list)
    failure: StatementFailed | None = None
    deadline: bool = False
