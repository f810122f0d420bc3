"""The run's advisory lock: its documented key and the queries that take, check, release and
look up its holder. Session-level and never waited on (a blocked waiter deadlocks with CREATE
INDEX CONCURRENTLY); whether to retry is the engine's call. Waiters LISTEN instead: the holder
notifies on release (``unlock``), so they all wake at once without holding a statement open.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import psycopg

from patcher.core.models import LockHolder


def lock_key(schema: str, table: str) -> int:
    """The documented advisory lock key for a history table: the first 8 bytes of SHA-256 of
    ``stackflowpatcher:<schema>.<table>`` as a signed big-endian bigint."""
    digest = hashlib.sha256(f"stackflowpatcher:{schema}.{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _key_halves(key: int) -> tuple[int, int]:
    """pg_locks shows a bigint advisory key as two oids: its high and low 32 bits."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


def try_lock(conn: psycopg.Connection[Any], key: int) -> bool:
    """One short autocommit attempt: never blocks (a blocked waiter deadlocks with CIC)."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    return bool(row and row[0])


def unlock(conn: psycopg.Connection[Any], key: int) -> None:
    """Release the lock and, in the same statement, notify the sessions waiting for it (the
    notification leaves at commit, after the release: a woken waiter finds the lock free)."""
    conn.execute("SELECT pg_advisory_unlock(%s), pg_notify(%s, '')", (key, channel(key)))


def release(conn: psycopg.Connection[Any], key: int) -> None:
    """At the end of the session: release every level of the lock, then notify. The run stacks
    levels (the cheap check after each migration is one more ``pg_try_advisory_lock``), so one
    ``pg_advisory_unlock`` left the lock held until the disconnect, and the waiters it woke
    found it still taken and slept their back-off. ``pg_advisory_unlock_all`` (the session ends
    next: what the disconnect releases, a moment earlier) frees it before the notice leaves."""
    conn.execute("SELECT pg_advisory_unlock_all(), pg_notify(%s, '')", (channel(key),))


def channel(key: int) -> str:
    """The LISTEN/NOTIFY channel on which a holder tells its waiters that it let go."""
    return f"patcher_lock_{key & 0xFFFFFFFFFFFFFFFF:x}"


def listen(conn: psycopg.Connection[Any], key: int) -> None:
    conn.execute(f"LISTEN {channel(key)}")  # our own hex digits: no quoting needed


def wait_release(conn: psycopg.Connection[Any], seconds: float) -> None:
    """Block up to ``seconds`` for a notification on the connection (idle on the server: no
    statement runs, no snapshot is held, unlike a blocked ``pg_advisory_lock``)."""
    for _ in conn.notifies(timeout=max(0.0, seconds), stop_after=1):
        pass


def held_sql(key: int) -> str:
    """SQL that is true while this session holds ``key`` (literals: the key is our integer)."""
    high, low = _key_halves(key)
    return (
        "EXISTS (SELECT FROM pg_locks WHERE pid = pg_backend_pid() AND granted "
        f"AND locktype = 'advisory' AND objsubid = 1 AND classid = {high}::bigint::oid "
        f"AND objid = {low}::bigint::oid)"
    )


def holds_lock(conn: psycopg.Connection[Any], key: int) -> bool:
    """Whether this session still holds the lock (asks the server, not a flag)."""
    row = conn.execute(f"SELECT {held_sql(key)}").fetchone()
    return bool(row and row[0])


def check_and_retake(key: int) -> str:
    """One statement answering 'held', 'retaken' (it was free: taken back) or 'lost'; it rides
    in the message after a migration's COMMIT, so the check costs no round trip. It reads
    pg_locks (~0.2 ms): used after scripts that may release locks (``may_release``)."""
    return (
        f"SELECT CASE WHEN {held_sql(key)} THEN 'held' "
        f"WHEN pg_try_advisory_lock({int(key)}) THEN 'retaken' ELSE 'lost' END"
    )


def retake(key: int) -> str:
    """The cheap check (~5 us): ``pg_try_advisory_lock`` succeeds when this session holds the
    key (session locks stack: one more level, all released with the session) or when it is free
    (taken back), and fails only when another session holds it. Answers 'held' or 'lost'."""
    return f"SELECT CASE WHEN pg_try_advisory_lock({int(key)}) THEN 'held' ELSE 'lost' END"


_RELEASES = ("advisory_unlock", "discard")


def may_release(statements: Sequence[str]) -> bool:
    """Whether a script might release the session's advisory locks (then the exact check).

    Plain substring tests on lowered text: a case-insensitive regex alternation scans a 50 MB
    data script ~10x slower."""
    for text in statements:
        low = text.lower()
        if any(word in low for word in _RELEASES):
            return True
    return False


def lock_holder(conn: psycopg.Connection[Any], key: int) -> LockHolder | None:
    """Who holds the lock in this database, if anyone."""
    row = conn.execute(
        """
            SELECT a.pid, a.application_name, a.backend_start::text, a.usename::text,
                   a.client_addr::text, a.state
              FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
               AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """,
        _key_halves(key),
    ).fetchone()
    return LockHolder(*row) if row else None
