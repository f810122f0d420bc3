"""The wait for the run's advisory lock: tried again whenever the holder says it let go (it
notifies on release: every waiter wakes at once, within a round trip) and otherwise with jittered
back-off (a holder that died tells no one) until the wait (or the Lambda budget) runs out,
telling who holds it (``lock_waiting``) and naming that holder in the ``LockTimeout`` (status
``locked``) when it gives up. Every command that takes the lock waits here: the runner and
``patcher adopt``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from patcher.core.errors import LockTimeout

if TYPE_CHECKING:
    from patcher.engine.context import RunContext
    from patcher.engine.ports import MigrationBackend


def acquire_lock(ctx: RunContext, settled: Callable[[], bool] | None = None) -> bool:
    """Try pg_try_advisory_lock on each release notice, else with backoff, until the wait (or
    the Lambda budget) runs out.

    Returns False, without the lock, as soon as ``settled()`` says there is nothing to wait
    for. Waits are jittered so that waiters started together do not poll in lockstep; a
    release wakes them all at once (``MigrationBackend.try_lock``)."""
    backend, opts = ctx.backend, ctx.options
    started = time.monotonic()
    wait_s = opts.lock_wait_seconds
    budget = ctx.deadline.budget_ms()
    if budget is not None:
        wait_s = max(0.0, min(wait_s, budget / 1000))
    interval, cap = opts.lock_poll_seconds
    told, wait = -1.0, 0.0
    while not backend.try_lock(wait):
        if ctx.interrupt.requested:  # the CLI's Ctrl-C / SIGTERM: stop waiting, nothing ran
            from patcher.engine.interruption import during_lock_wait

            holder = backend.lock_holder()
            raise during_lock_wait(ctx, holder.describe() if holder else "another session")
        waited = time.monotonic() - started
        if waited >= wait_s:
            raise lock_timeout(backend, waited)
        if settled is not None and settled():
            ctx.emit("lock_not_needed", {"lock_wait_ms": int((time.monotonic() - started) * 1000)})
            return False
        told = tell_waiting(ctx, waited, wait_s, told)
        wait = min(interval * random.uniform(0.5, 1.0), max(0.0, wait_s - waited))
        interval = min(interval * 2, cap)
    ctx.emit("lock_acquired", {"lock_wait_ms": int((time.monotonic() - started) * 1000)})
    return True


def tell_waiting(ctx: RunContext, waited: float, wait_s: float, told: float) -> float:
    """A ``lock_waiting`` event (who holds the lock) when the wait starts, then about once a
    second; returns when it last told."""
    if told >= 0 and waited - told < 1.0:
        return told
    holder = ctx.backend.lock_holder()
    ctx.emit(
        "lock_waiting",
        {
            "waited_ms": int(waited * 1000),
            "wait_limit_ms": int(wait_s * 1000),
            "holder": holder.describe() if holder else None,
            "holder_pid": holder.pid if holder else None,
        },
    )
    return waited


def lock_timeout(backend: MigrationBackend, waited: float) -> LockTimeout:
    """The refusal of a run that waited too long, naming who holds the lock."""
    holder = backend.lock_holder()
    who = holder.describe() if holder else "a session that has since let go"
    return LockTimeout(
        f"another run holds the migration lock (key {backend.key}): {who}. Waited "
        f"{waited:.1f}s (PATCHER_LOCK_WAIT_SECONDS or the Lambda time left). Let it "
        "finish and invoke again; if that session is stuck, end it with "
        f"SELECT pg_terminate_backend({holder.pid if holder else 'pid'})",
        holder_pid=holder.pid if holder else None,
        holder_application_name=holder.application_name if holder else None,
        holder_since=holder.since if holder else None,
    )
