"""The lock_timeout retry: a statement that could not get its lock in time is tried again,
unless it may have committed something before it failed (SPEC 7 item 5, nothing twice)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

from patcher.core.errors import StatementFailed
from patcher.engine.context import RunOptions

T = TypeVar("T")

_COMMITS_INSIDE = re.compile(
    r"(?:\s+|--[^\n]*+(?:\n|$)|/\*.*?\*/)*+(CALL|DO)\b", re.IGNORECASE | re.DOTALL
)
"""A ``CALL`` or ``DO`` at the head of a statement (after any blanks and comments)."""


def commits_inside(text: str) -> str | None:
    """``CALL`` or ``DO`` when a statement may COMMIT inside once it started (a procedure or a
    DO block run outside a transaction block can); None otherwise.

    Functions cannot COMMIT, so a ``SELECT f()`` is not one. What commits through another
    connection (dblink, pg_background) is not seen here."""
    match = _COMMITS_INSIDE.match(text)
    return match[1].upper() if match else None


def with_lock_retries(
    action: Callable[[], T], opts: RunOptions, before_retry: Callable[[], bool] | None = None
) -> T:
    """Run ``action``; when it hits lock_timeout, retry with doubling back-off.

    ``before_retry`` cleans up what the failed attempt left (an INVALID index) first; when it
    cannot (False), the lock_timeout failure stands and no retry is made."""
    delay = opts.lock_retry_backoff_seconds
    for attempt in range(opts.lock_retries + 1):
        try:
            return action()
        except StatementFailed as exc:
            if not exc.lock_not_available or attempt == opts.lock_retries:
                raise
            time.sleep(delay)
            delay *= 2
            if before_retry is not None and not before_retry():
                raise
    raise AssertionError("unreachable")
