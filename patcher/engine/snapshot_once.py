"""One schema snapshot per run (SPEC section 13), not one per history write.

A snapshot is a catalog aggregation (~0.1 s at 1,000 objects, ~0.6 s at 10,000): stored with
every history write, a run of N migrations would pay it N times. So while a run carries out its
steps, only the write of its LAST step stores one (in that step's transaction, the last item of
the last batch message included): the common successful run pays one snapshot.

A run that stops before its last step after changing the schema (a failed migration after
others committed, a partial run at the deadline, a dirty no-transaction script, a cut or
interrupted run) stores the snapshot of the state it left in its own short transaction, while it
still holds the lock. Best effort: a failure to store it (the session lost, the lock lost: the
run that took it stores its own) is a warning and never changes the run's result; ``drift``
then finds the snapshot older than the history and says so instead of reporting false drift.

A backend without snapshots (the in-memory fake) lacks the ``OneSnapshot`` port: nothing to do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

from patcher.core.models import HistoryChange
from patcher.engine.context import RunContext


@runtime_checkable
class OneSnapshot(Protocol):
    def snapshot_only_with(self, last: HistoryChange | None) -> None:
        """From now on only the write of ``last`` stores a snapshot (None: every write that
        leaves a new schema, as baseline, repair and adopt write theirs)."""
        ...

    def store_snapshot(self) -> str | None:
        """Store the snapshot of the schema as it is, in its own transaction; None when
        stored, else why not (never raises)."""
        ...


@contextmanager
def one_snapshot(
    ctx: RunContext, last: HistoryChange | None, changed: Callable[[], bool]
) -> Iterator[None]:
    """Around a run's steps: only ``last``'s write stores the snapshot; when the steps end
    without it and ``changed()`` says the schema moved, the snapshot is stored on its own."""
    port = ctx.backend
    if last is None or not isinstance(port, OneSnapshot):
        yield
        return
    port.snapshot_only_with(last)
    try:
        yield
    finally:
        port.snapshot_only_with(None)
        if changed():
            note = port.store_snapshot()
            if note is not None:
                ctx.outcome.warnings.append(note)
