"""The run context: what every part of a run shares, instead of threading it through calls.

``RunOptions`` are the tunables, ``Deadline`` the Lambda clock, ``RunContext`` one run's
backend, plan, scripts, options, clock, event sink and outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from patcher.core.errors import DeadlineReached
from patcher.core.models import AppliedRow, Plan, Request
from patcher.engine.outcome import Outcome
from patcher.engine.ports import MigrationBackend, TimeoutSource
from patcher.sql.scripts import ScriptSet

EventSink = Callable[[str, dict[str, Any]], None]


def no_events(_name: str, _fields: dict[str, Any]) -> None:
    """The event sink of a run nobody watches."""


@dataclass(frozen=True)
class RunOptions:
    lock_wait_seconds: float = 60.0
    lock_poll_seconds: tuple[float, float] = (0.02, 0.1)  # first interval, cap (doubling)
    lock_retries: int = 3  # extra attempts after a statement hits lock_timeout
    lock_retry_backoff_seconds: float = 1.0  # doubles each retry
    time_margin_seconds: float = 30.0
    statement_timeout_ms: int | None = None
    lock_timeout: str = "10s"
    verify_lock_timeout_ms: int = 2000  # a preview never queues production behind it for long


class Deadline:
    """The Lambda clock: how long a statement may take and whether to start another step."""

    def __init__(self, time_left_ms: Callable[[], int] | None, margin_s: float) -> None:
        self.time_left_ms, self.margin_ms = time_left_ms, int(margin_s * 1000)

    def budget_ms(self) -> int | None:
        """Milliseconds usable before the margin, or None without a deadline."""
        return None if self.time_left_ms is None else self.time_left_ms() - self.margin_ms

    def check(self, what: str) -> None:
        """Raise DeadlineReached when there is too little time left to start ``what``."""
        budget = self.budget_ms()
        if budget is not None and budget < 1000:
            raise DeadlineReached(f"stopped before {what}: the Lambda deadline is near")

    def statement_cap(self, statement_timeout_ms: int | None) -> TimeoutSource | None:
        """The statement_timeout to send with each statement, or None without a deadline."""
        if self.time_left_ms is None:
            return None

        def cap() -> int | None:
            budget = max(1, self.budget_ms() or 1)
            return min(budget, statement_timeout_ms or budget)

        return cap


@dataclass
class RunContext:
    """One run: the request, the session, the knobs, the clock, the event sink, the outcome,
    and (once read and planned) the history, the plan and the scripts it needs."""

    request: Request
    backend: MigrationBackend
    options: RunOptions = field(default_factory=RunOptions)
    deadline: Deadline = field(default_factory=lambda: Deadline(None, 0))
    emit: EventSink = no_events
    outcome: Outcome = field(default_factory=lambda: Outcome(status="invalid"))
    history: list[AppliedRow] = field(default_factory=list)
    scripts: ScriptSet = field(default_factory=dict)
    plan: Plan = field(init=False)

    def __post_init__(self) -> None:
        self.plan = Plan(self.request, (), None)

    def statement_cap(self) -> TimeoutSource | None:
        return self.deadline.statement_cap(self.options.statement_timeout_ms)
