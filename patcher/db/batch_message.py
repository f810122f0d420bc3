"""Several transactional migrations in one simple-query message, each its own transaction.

One message carries, for each migration::

    [SELECT <deadline guard>;]  BEGIN; <script>; <session restore>; <history change, returning
    its server-clock duration>; COMMIT; SELECT <lock check>;

PostgreSQL runs the statements in order and skips the rest of the message at the first error, so
each migration stays atomic with its history row and nothing after a failure runs. Which
migration (and which of its statements) failed is read from the results that came back before
the error: the history change and the lock check answer in columns named with a per-session
marker, every other statement gives one result. A parse error fails the whole message before
anything runs: the migrations before the one it names are then sent again without it.

The deadline guard (before every migration but the first) fails on the server once more than
``start_within_ms`` have passed since the message arrived, so a batch never starts a migration
the engine's deadline rule would not start. The lock check fails when another session took the
lock, so nothing runs after a migration that lost it.
"""

from __future__ import annotations

import bisect
import secrets
import time
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

import psycopg
from psycopg import generators, pq

from patcher.core.batch_items import BatchDone, BatchItem
from patcher.core.errors import StatementFailed
from patcher.core.models import Committed, LockState
from patcher.core.record import record
from patcher.db import advisory_lock
from patcher.db.execution import statement_failed
from patcher.db.history import History

_ERROR = pq.ExecStatus.FATAL_ERROR
_TUPLES = pq.ExecStatus.TUPLES_OK
_IDLE = pq.TransactionStatus.IDLE
_LOST_WORD, _DEADLINE_WORD = "patcher_lock_lost", "patcher_deadline_passed"


def _fail(word: str) -> str:
    """An expression that raises (22P02, naming ``word``) when evaluated: never constant, so
    the planner cannot fold it, and only the CASE branch that reaches it raises."""
    return f"('{word}_' || pg_backend_pid())::integer::text"


@record
class _Placed:
    """Where one item's script sits in the message."""

    offset: int
    item: BatchItem


class BatchRunner:
    """Builds and runs batch messages for one session (its markers, restore text, lock key)."""

    def __init__(self, conn: psycopg.Connection[Any], history: History, restore: str, key: int):
        self.conn, self.history, self.restore = conn, history, restore
        nonce = secrets.token_hex(4)
        self.ms_marker, self.lock_marker = f"patcher_ms_{nonce}", f"patcher_lock_{nonce}"
        self.go_marker = f"patcher_go_{nonce}"
        self._markers = {m.encode(): m for m in (self.ms_marker, self.lock_marker, self.go_marker)}
        held = advisory_lock.held_sql(key)
        self._cheap = (
            f"SELECT CASE WHEN pg_try_advisory_lock({key}) THEN 'held' "
            f"ELSE {_fail(_LOST_WORD)} END AS {self.lock_marker};\n"
        )
        self._exact = (
            f"SELECT CASE WHEN {held} THEN 'held' WHEN pg_try_advisory_lock({key}) THEN "
            f"'retaken' ELSE {_fail(_LOST_WORD)} END AS {self.lock_marker};\n"
        )
        self._check_sql = advisory_lock.check_and_retake(key)

    # -- the message ------------------------------------------------------------------------------

    def message(
        self, items: Sequence[BatchItem], start_within_ms: int | None
    ) -> tuple[str, list[_Placed]]:
        parts: list[str] = []
        placed: list[_Placed] = []
        size = 0
        for i, item in enumerate(items):
            head = "BEGIN;\n"
            if i and start_within_ms is not None:
                head = (
                    "SELECT CASE WHEN clock_timestamp() - statement_timestamp() < interval "
                    f"'{max(0, start_within_ms)} milliseconds' THEN 'go' ELSE "
                    f"{_fail(_DEADLINE_WORD)} END AS {self.go_marker};\n{head}"
                )
            write = self.history.batch_sql(item.change, self.ms_marker)
            check = self._exact if advisory_lock.may_release((item.text,)) else self._cheap
            tail = f"\n;\n{self.restore}{write};\nCOMMIT;\n{check}"
            placed.append(_Placed(size + len(head), item))
            parts += (head, item.text, tail)
            size += len(head) + len(item.text) + len(tail)
        return "".join(parts), placed

    # -- running ----------------------------------------------------------------------------------

    def run(self, items: Sequence[BatchItem], start_within_ms: int | None) -> BatchDone:
        """Send the batch; report how far it got (see ``BatchDone``)."""
        started = time.perf_counter()
        text, placed = self.message(items, start_within_ms)
        conn = self.conn
        try:
            with conn.lock:
                conn.pgconn.send_query(text.encode(conn.info.encoding))
                results = conn.wait(generators.execute(conn.pgconn))
        except psycopg.Error as exc:  # the session is gone: only the history can tell
            lost = statement_failed(0, exc, at_commit=True)
            lost.connection_lost = True
            return BatchDone(failure=lost)
        del text
        done, parse_error_at = self._read(results, placed)
        self._end_failed_transaction()
        if parse_error_at:  # nothing ran: run the items before the one it names, then report it
            left = None if start_within_ms is None else start_within_ms - _ms_since(started)
            before = self.run(items[:parse_error_at], left)
            clean = before.failure is None and not before.deadline
            if clean and before.committed and before.committed[-1].lock is not LockState.LOST:
                before.failure = done.failure
            return before
        return done

    def _end_failed_transaction(self) -> None:
        conn = self.conn
        if not conn.broken and conn.info.transaction_status != _IDLE:
            with suppress(psycopg.Error):
                conn.execute("ROLLBACK")

    def _read(
        self, results: Sequence[pq.abc.PGresult], placed: list[_Placed]
    ) -> tuple[BatchDone, int]:
        """Walk the results: committed items, then the failure (mapped to its statement).
        Also returns the item a parse error named when nothing ran (0 when none did)."""
        done = BatchDone()
        count, ms, after_ms = 0, None, 0  # results of the current item; its duration
        for res in results:
            if res.status == _ERROR:
                exc = psycopg.errors.error_from_result(res, encoding=self.conn.info.encoding)
                if ms is not None and after_ms:  # committed; the lock check after it failed
                    self._check_failed(exc, done, ms)
                    return done, 0
                if _DEADLINE_WORD in (exc.diag.message_primary or "") and count == 0:
                    done.deadline = True
                    return done, 0
                nothing_ran = res is results[0]
                item, failure = self._located(exc, placed, len(done.committed), count, ms)
                if nothing_ran and item:
                    failure_only = BatchDone(failure=failure)
                    return failure_only, item
                done.failure = failure
                return done, 0
            marker = self._markers.get(res.fname(0) or b"") if res.status == _TUPLES else None
            if marker == self.ms_marker:
                ms, after_ms = int(res.get_value(0, 0) or 0), 0
            elif marker == self.lock_marker:
                answer = (res.get_value(0, 0) or b"held").decode()
                done.committed.append(Committed(ms or 0, LockState(answer)))
                count, ms = 0, None
            elif marker is None:
                if ms is None:
                    count += 1
                else:
                    after_ms += 1
        return done, 0

    def _check_failed(self, exc: psycopg.Error, done: BatchDone, ms: int) -> None:
        """The item committed, then its lock check failed: lost, or (cancelled, say) unknown:
        then asked again alone. Either way nothing more of the batch runs."""
        lost = _LOST_WORD in (exc.diag.message_primary or "")
        done.committed.append(Committed(ms, LockState.LOST if lost else self._check_lock()))
        done.deadline = not lost

    def _located(
        self, exc: psycopg.Error, placed: list[_Placed], index: int, count: int, ms: int | None
    ) -> tuple[int, StatementFailed]:
        """Which item failed, and the failure as ``run_transactional`` reports it: statement
        index and position within that item's statements.

        ``count``: results of the item before the error (its BEGIN, then one per statement);
        ``ms``: set once its history change answered (then COMMIT failed)."""
        raw = exc.diag.statement_position
        position = int(raw) - 1 if raw else None
        if position is not None and count == 0 and index == 0:  # a parse error names its item
            index = max(0, bisect.bisect_right([p.offset for p in placed], position) - 1)
        where = placed[min(index, len(placed) - 1)]
        starts, n = where.item.starts, len(where.item.starts)
        ran = max(0, count - 1)
        local = None if position is None else position - where.offset
        if ms is None and local is not None and 0 <= local < len(where.item.text) and n:
            stmt = max(0, bisect.bisect_right(starts, local) - 1)
            failure = statement_failed(stmt, exc)
            failure.position = local - starts[stmt] + 1
        elif ms is not None or ran >= n:  # COMMIT, or the restore / history change before it
            failure = statement_failed(n, exc, at_commit=True)
            failure.position = None
        else:
            failure = statement_failed(ran, exc)
            failure.position = None
        return index, failure

    def _check_lock(self) -> LockState:
        """The exact lock check, alone: after a lock check that failed for another reason."""
        try:
            row = self.conn.execute(self._check_sql, prepare=False).fetchone()
        except psycopg.Error:
            return LockState.LOST
        return LockState(str(row[0])) if row else LockState.LOST


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
