"""Running a migration's statements: in one transaction that also writes its history change,
or one by one in autocommit, and describing a failed statement as the core ``StatementFailed``
(which statement, where in it, and whether the session, a lock or a timeout was the cause).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from typing import Any

import psycopg
from psycopg import generators, pq

from patcher.core.errors import StatementFailed
from patcher.core.models import StopCheck

_IDLE = psycopg.pq.TransactionStatus.IDLE
_ERROR = pq.ExecStatus.FATAL_ERROR


FinishSql = Callable[[int], str]
"""Gives the text sent with COMMIT for a run that took that many ms: session restore, the
history write, ``COMMIT``, the lock check (its last statement answers the lock's state)."""

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


def unsendable(conn: psycopg.Connection[Any], index: int, exc: UnicodeError) -> StatementFailed:
    """A statement whose text the session's client_encoding (which the script set: the
    runner's is UTF8) cannot carry; nothing of it was sent (SPEC 7 item 2)."""
    name = conn.info.parameter_status("client_encoding") or conn.info.encoding
    bad = exc.object[exc.start : exc.end] if isinstance(exc, UnicodeEncodeError) else ""
    return StatementFailed(
        f"the statement holds text ({bad!r}) that client_encoding {name}, which the script "
        "set, cannot carry; nothing of it was sent. Remove the SET client_encoding (the "
        "runner's session is UTF8) or keep the script's text within that encoding",
        index=index,
        sqlstate="22P05",  # untranslatable_character, as the server says it
    )


def _stopped(index: int) -> StatementFailed:
    return StatementFailed(
        "cut by the Lambda deadline before this statement was sent", index=index, cancelled=True
    )


_SEPARATOR = "\n;\n"
CHUNK_CHARS = 256_000
"""Statements of one transactional script travel together in messages of about this size (a big
data script then costs a few hundred round trips, not one per statement); the last statement
goes alone, since only it can leave a string or comment open that would swallow what follows."""


def run_transactional(
    conn: psycopg.Connection[Any],
    statements: Sequence[str],
    finish_sql: FinishSql,
    stop: StopCheck | None = None,
) -> tuple[int, str]:
    """Run every statement, then the finish text, in one transaction; return (elapsed ms,
    what the finish text's last statement answered).

    BEGIN travels with the first statements and the history change (after the session
    restore) with COMMIT and the lock check (simple protocol, several statements per message,
    ``CHUNK_CHARS`` at a time). ``stop`` is asked before each message. Raises StatementFailed;
    the transaction is then rolled back: no trace but the error."""
    started = time.perf_counter()
    cur = conn.cursor()
    try:
        if not statements:
            cur.execute("BEGIN")
        index = 0
        for first, texts in _chunks(statements):
            if stop is not None and stop():
                raise _stopped(first)
            _run_chunk(conn, texts, first, "BEGIN;\n" if first == 0 else "")
            index = first + len(texts)
        elapsed = ms_since(started)
        try:
            cur.execute(finish_sql(elapsed), prepare=False)
            answer = last_value(cur)
        except psycopg.Error as exc:
            raise statement_failed(index, exc, at_commit=True) from exc
    except BaseException:
        if not conn.broken and conn.info.transaction_status != _IDLE:
            with suppress(psycopg.Error):
                conn.execute("ROLLBACK")
        raise
    return elapsed, answer


def _chunks(statements: Sequence[str]) -> Iterator[tuple[int, list[str]]]:
    """(index of the first, texts) of the statements sent together: up to ``CHUNK_CHARS`` of
    text, and the last statement alone. Each text is sliced from the script once."""
    n = len(statements)
    first, size, texts = 0, 0, []
    for index in range(n - 1):
        text = statements[index]
        texts.append(text)
        size += len(text)
        if size >= CHUNK_CHARS:
            yield first, texts
            first, size, texts = index + 1, 0, []
    if texts:
        yield first, texts
    if n:
        yield n - 1, [statements[n - 1]]


def _run_chunk(conn: psycopg.Connection[Any], texts: list[str], first: int, prefix: str) -> None:
    """Send ``texts`` (statements from ``first`` on) as one message; a failure names its
    statement (the results before the error say how many ran) and its position inside it."""
    if len(texts) == 1:
        try:
            conn.cursor().execute(prefix + texts[0], prepare=False)
        except psycopg.Error as exc:
            raise statement_failed(first, exc, offset=len(prefix)) from exc
        except UnicodeEncodeError as exc:
            raise unsendable(conn, first, exc) from None
        return
    # The ';' goes on a line of its own: a statement may end in a line comment ("... -- c"),
    # which would swallow a ';' written after it (SPEC section 7 item 5: the statements run are
    # the file's, on this path as in a batch).
    offsets, size = [], len(prefix)
    for text in texts:
        offsets.append(size)
        size += len(text) + len(_SEPARATOR)
    message = prefix + _SEPARATOR.join(texts) + _SEPARATOR
    try:
        data = message.encode(conn.info.encoding)
    except UnicodeEncodeError as exc:
        texts.clear()
        at = max(0, bisect.bisect_right(offsets, exc.start) - 1)
        raise unsendable(conn, first + at, exc) from None
    try:
        with conn.lock:
            conn.pgconn.send_query(data)
            results = conn.wait(generators.execute(conn.pgconn))
    except psycopg.Error as exc:
        raise statement_failed(first, exc) from exc
    finally:
        texts.clear()
    bad = next((r for r in results if r.status == _ERROR), None)
    if bad is None:
        return
    error = psycopg.errors.error_from_result(bad, encoding=conn.info.encoding)
    done = len(results) - 1 - (1 if prefix else 0)  # the results before it, less BEGIN's
    raw = error.diag.statement_position
    if raw:  # a parse error (nothing ran) or an analysis error: located by its position
        done = max(0, bisect.bisect_right(offsets, int(raw) - 1) - 1)
    raise statement_failed(first + done, error, offset=offsets[done]) from error


def last_value(cur: psycopg.Cursor[Any]) -> str:
    """The first column of the last result of a multi-statement message."""
    while cur.nextset():
        pass
    row = cur.fetchone()
    return str(row[0]) if row else ""


def run_statements(
    conn: psycopg.Connection[Any], statements: Sequence[str], stop: StopCheck | None = None
) -> None:
    """Run statements one by one as sent (autocommit unless a transaction is open); before
    each, ``stop`` may say the engine cut the run."""
    cur = conn.cursor()
    for index, text in enumerate(statements):
        if stop is not None and stop():
            raise _stopped(index)
        try:
            cur.execute(text, prepare=False)
        except psycopg.Error as exc:
            raise statement_failed(index, exc) from exc
        except UnicodeEncodeError as exc:
            raise unsendable(conn, index, exc) from None


def ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
