"""The lock_timeout retry: a statement that could not get its lock in time is tried again."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from patcher.core.errors import StatementFailed
from patcher.engine.context import RunOptions

T = TypeVar("T")


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
