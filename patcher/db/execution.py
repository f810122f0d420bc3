"""Running a migration's statements: in one transaction that also writes its history change,
or one by one in autocommit, and describing a failed statement as the core ``StatementFailed``
(which statement, where in it, and whether the session, a lock or a timeout was the cause).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

import psycopg

from patcher.core.errors import StatementFailed

_IDLE = psycopg.pq.TransactionStatus.IDLE

TimeoutSource = Callable[[], int | None]
"""Gives the statement timeout (ms) to set before each statement, or None for the default
(the same alias as ``patcher.engine.ports.TimeoutSource``: db/ never imports the engine)."""

HistoryQuery = Callable[[int], tuple[str, dict[str, Any]]]
"""Gives the history write (query, parameters) to commit with a run that took that many ms."""

_CONNECTION_LOST = (
    psycopg.errors.AdminShutdown,  # 57P01
    psycopg.errors.CrashShutdown,  # 57P02
    psycopg.errors.CannotConnectNow,  # 57P03
    psycopg.errors.ConnectionFailure,  # 08006
    psycopg.errors.ConnectionDoesNotExist,  # 08003
    psycopg.errors.ConnectionException,  # 08000
)


def statement_failed(
    index: int, exc: psycopg.Error, *, offset: int = 0, at_commit: bool = False
) -> StatementFailed:
    """The engine's view of a driver error raised by statement ``index`` of a list.

    ``offset``: characters sent before the statement in the same message ("BEGIN;\n")."""
    diag = exc.diag
    position = int(diag.statement_position) if diag.statement_position else None
    lost = isinstance(exc, _CONNECTION_LOST) or (
        isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None
    )
    return StatementFailed(
        (diag.message_primary or str(exc)).strip(),
        index=index,
        sqlstate=exc.sqlstate,
        detail=diag.message_detail,
        hint=diag.message_hint,
        position=position - offset if position and position > offset else None,
        at_commit=at_commit,
        connection_lost=lost,
        lock_not_available=isinstance(exc, psycopg.errors.LockNotAvailable),
        cancelled=isinstance(exc, psycopg.errors.QueryCanceled),
    )


def run_transactional(
    conn: psycopg.Connection[Any],
    statements: Sequence[str],
    history_query: HistoryQuery,
    timeout_ms: TimeoutSource | None = None,
) -> int:
    """Run every statement and the history change in one transaction; return elapsed ms.

    BEGIN travels with the first statement, the deadline's statement_timeout with each
    statement, and the history change with COMMIT (simple protocol, several statements
    per message), so n statements cost n round trips, not n + 3 (or 2n + 3 in Lambda).
    Raises StatementFailed; the transaction is then rolled back: no trace but the error."""
    started = time.perf_counter()
    cur = conn.cursor()
    try:
        if not statements:
            cur.execute("BEGIN")
        for index, text in enumerate(statements):
            prefix = "BEGIN;\n" if index == 0 else ""
            if timeout_ms is not None:  # the deadline's cap rides in the same message
                prefix += f"SET statement_timeout = {int(timeout_ms() or 0)};\n"
            try:
                cur.execute(prefix + text, prepare=False)
            except psycopg.Error as exc:
                raise statement_failed(index, exc, offset=len(prefix)) from exc
        elapsed = ms_since(started)
        query, params = history_query(elapsed)
        finish = psycopg.ClientCursor(conn).mogrify(query, params) + ";\nCOMMIT"
        try:
            cur.execute(finish, prepare=False)
        except psycopg.Error as exc:
            raise statement_failed(len(statements), exc, at_commit=True) from exc
    except BaseException:
        if not conn.broken and conn.info.transaction_status != _IDLE:
            with suppress(psycopg.Error):
                conn.execute("ROLLBACK")
        raise
    return elapsed


def run_statements(
    conn: psycopg.Connection[Any], statements: Sequence[str], timeout_ms: TimeoutSource | None
) -> None:
    """Run statements one by one as sent (autocommit unless a transaction is open), setting
    the statement timeout before each when ``timeout_ms`` is given."""
    cur = conn.cursor()
    for index, text in enumerate(statements):
        try:
            if timeout_ms is not None:
                set_statement_timeout(conn, timeout_ms())
            cur.execute(text, prepare=False)
        except psycopg.Error as exc:
            raise statement_failed(index, exc) from exc


def set_statement_timeout(conn: psycopg.Connection[Any], ms: int | None) -> None:
    """Cap the next statements (0 or None: the session default)."""
    conn.execute("SELECT set_config('statement_timeout', %s, false)", (f"{ms or 0}ms",))


def ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
