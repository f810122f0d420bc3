"""The run context: what every part of a run shares, instead of threading it through calls.

``RunOptions`` are the tunables, ``Deadline`` the Lambda clock, ``RunContext`` one run's
backend, plan, scripts, options, clock, event sink and outcome.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import field
from typing import TYPE_CHECKING, Any

from patcher.core.errors import DeadlineReached
from patcher.core.interrupt import Interrupt
from patcher.core.models import AppliedRow, Plan, Request, SourceObject
from patcher.core.record import mutable_record, record
from patcher.engine.outcome import Outcome

if TYPE_CHECKING:
    from patcher.engine.ports import Connect, MigrationBackend, PreviewBackend
    from patcher.sql.scripts import ScriptSet

EventSink = Callable[[str, dict[str, Any]], None]


def no_events(_name: str, _fields: dict[str, Any]) -> None:
    """The event sink of a run nobody watches."""


@record
class RunOptions:
    lock_wait_seconds: float = 60.0
    lock_poll_seconds: tuple[float, float] = (0.02, 0.1)  # first interval, cap (doubling)
    lock_retries: int = 3  # extra attempts after a statement hits lock_timeout
    lock_retry_backoff_seconds: float = 1.0  # doubles each retry
    time_margin_seconds: float = 30.0
    lock_timeout: str = "10s"
    verify_lock_timeout_ms: int = 2000  # a preview never queues production behind it for long
    count_timeout_ms: int = 1000  # data_at_risk without verify: one count(*), then statistics
    count_budget_ms: int = 5000  # ... and all of a rollback preview's counts together
    drift_ignore: tuple[str, ...] = ()  # PATCHER_DRIFT_IGNORE: left out of drift warnings
    release_gate: Callable[[], dict[str, Any]] | None = None  # SPEC 11: reads the alias


SAFETY_MS = 3000
"""How long before the Lambda deadline a running migration is cut: enough to roll it back, write
the audit row and return the result (measured: rollback + audit row + answer take well under
0.5 s on a healthy writer; 3 s leaves room for a slow network)."""

START_SLACK_MS = 1000
"""A migration starts only while more than the margin plus this is left (SPEC 7 item 1)."""


class Deadline:
    """The Lambda clock: whether a migration may start, and when a running one is cut.

    A migration starts only while more than the margin is left; once started it may use the
    margin and is cut at the time left minus ``SAFETY_MS`` (the whole migration, however many
    statements it has: the engine cancels it from the client)."""

    def __init__(self, time_left_ms: Callable[[], int] | None, margin_s: float) -> None:
        self.time_left_ms, self.margin_ms = time_left_ms, int(margin_s * 1000)
        self._first = (time.perf_counter(), time_left_ms()) if time_left_ms else None

    def rate(self) -> float:
        """How many of the Lambda clock's ms pass per ms of this process's clock, at least 1
        (1 in Lambda; a test's clock may run faster): server-side waits are scaled by it."""
        if self._first is None or self.time_left_ms is None:
            return 1.0
        real_ms = (time.perf_counter() - self._first[0]) * 1000
        if real_ms < 20:
            return 1.0
        return max(1.0, (self._first[1] - self.time_left_ms()) / real_ms)

    def budget_ms(self) -> int | None:
        """Milliseconds usable before the margin (to wait for the lock), or None."""
        return None if self.time_left_ms is None else self.time_left_ms() - self.margin_ms

    def check(self, what: str) -> None:
        """Raise DeadlineReached when there is too little time left to start ``what``."""
        budget = self.budget_ms()
        if budget is not None and budget < START_SLACK_MS:
            raise DeadlineReached(f"stopped before {what}: the Lambda deadline is near")

    def cut_in_seconds(self) -> float | None:
        """Seconds from now until a running migration must be cut, or None without a deadline."""
        if self.time_left_ms is None:
            return None
        return max(0.0, (self.time_left_ms() - SAFETY_MS) / 1000)

    def expired(self) -> bool:
        """True once the time left is down to the safety: send nothing more."""
        return self.time_left_ms is not None and self.time_left_ms() <= SAFETY_MS


class Watchdog:
    """Cuts a migration at the deadline: a timer cancels what the session runs, and ``stop``
    tells the backend to send nothing more. ``fired`` says whether it cut. An interrupt (the
    CLI's signal, whose handler cancels the statement itself) stops the sending too."""

    def __init__(
        self, backend: MigrationBackend, deadline: Deadline, interrupt: Interrupt | None = None
    ) -> None:
        self.backend, self.deadline, self.interrupt = backend, deadline, interrupt
        self.fired = False
        seconds = deadline.cut_in_seconds()
        self._timer = None if seconds is None else threading.Timer(seconds, self._fire)

    def __enter__(self) -> Watchdog:
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer.join()  # a cancel in flight reaches the server before anything else

    def _fire(self) -> None:
        self.fired = True
        self.backend.cancel()

    def stop(self) -> bool:
        """The backend's StopCheck: True once the deadline has cut the migration (or the run
        was interrupted)."""
        if not self.fired and self.deadline.expired():
            self.fired = True
        return self.fired or (self.interrupt is not None and self.interrupt.requested)


@mutable_record
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
    connect: Connect | None = None  # opens a new session (to learn a COMMIT in doubt)
    interrupt: Interrupt = field(default_factory=Interrupt)  # the CLI's SIGINT / SIGTERM
    checksums: dict[str, tuple[SourceObject, str]] = field(default_factory=dict)  # read this run
    plan: Plan = field(init=False)

    def __post_init__(self) -> None:
        self.plan = Plan(self.request, (), None)

    @property
    def preview(self) -> PreviewBackend:
        """The preview port on this run's session (dry runs only)."""
        from patcher.engine.ports import preview_port

        return preview_port(self.backend)

    def watchdog(self) -> Watchdog:
        """A fresh deadline watchdog on this run's session, for one migration or preview."""
        return Watchdog(self.backend, self.deadline, self.interrupt)
