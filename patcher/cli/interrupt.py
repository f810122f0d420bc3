"""Ctrl-C and SIGTERM during an engine command: no traceback, the run stops as a Lambda deadline
cut would, and the command prints its result (error ``Interrupted``) and exits 130 / 143.

While the engine runs, SIGINT and SIGTERM go to ``Interrupt.request`` (``core/interrupt.py``),
which cancels what the session runs; the engine then rolls a transactional migration back,
leaves a no-transaction one dirty, writes the audit row, releases the lock and returns. A second
signal only cancels again: the run is already stopping and its result says what was left.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType

from patcher.core.interrupt import Interrupt

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stopping_on_signals(interrupt: Interrupt, *, quiet: bool) -> Iterator[None]:
    """Route SIGINT and SIGTERM to ``interrupt`` for the duration; ``quiet``: say nothing on
    stderr (``--json``). Only the main thread can take signals: elsewhere nothing is routed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        first = not interrupt.requested
        interrupt.request(signum)
        if first and not quiet:
            # os.write, not print: the handler may run inside a write to sys.stderr
            with suppress(OSError, ValueError, AttributeError):  # no real stderr: say nothing
                start = "\r\x1b[K" if sys.stderr.isatty() else ""
                line = f"{start}patcher: {interrupt.name}: stopping, then printing what was left"
                os.write(sys.stderr.fileno(), f"{line}\n".encode())

    previous = {signum: signal.signal(signum, handler) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def exit_status(interrupt: Interrupt, code: int) -> int:
    """128 + the signal's number (130 for SIGINT, 143 for SIGTERM) once one came, else ``code``."""
    return 128 + interrupt.signum if interrupt.signum is not None else code
