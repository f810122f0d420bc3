"""How a request reaches its database (issue 33): the connection budget, the Lambda clock, and
whether the request needs the writer; and what the result says of the wait.

``patcher.db.reach`` makes the attempts; this module only composes its settings from the
configuration and the invocation, and words the warning a slow database earns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from patcher.core.models import Request
from patcher.db.reach import Reach

READ_ONLY_ACTIONS = ("status", "drift")


def reach_for(
    request: Request,
    budget_s: float,
    margin_s: float,
    time_left_ms: Callable[[], int] | None,
    events: Callable[[str, dict[str, Any]], None] | None,
) -> Reach:
    """The reach of one invocation: ``PATCHER_CONNECT_BUDGET_SECONDS`` per session opened,
    never past the Lambda time left minus the margin; a request that writes needs the writer."""
    left = None if time_left_ms is None else (lambda: time_left_ms() / 1000 - margin_s)
    writes = not request.dry_run and request.action not in READ_ONLY_ACTIONS
    reach = Reach(budget_s=budget_s, time_left_s=left, writer=writes)
    if events is not None:
        reach.emit = events
    return reach


def wait_warning(reach: Reach) -> str | None:
    """A warning when the database did not answer at the first attempt."""
    if not (reach.retried and reach.answered):
        return None
    return (
        f"the database answered only after {reach.waited_ms / 1000:.1f} s and "
        f"{reach.attempts} connection attempts (a resuming Aurora Serverless cluster, a "
        "failover, or a cluster endpoint still naming a reader); the log has each attempt"
    )
