"""A request from outside the run to stop it (the CLI's SIGINT / SIGTERM), as a flag the engine
reads at its stopping points and a cancel of whatever the session is running right now.

The CLI makes one and calls ``request`` from its signal handler; the engine ``attach``es the
run's session cancel while the session is open, and stops the way a Lambda deadline cut does.
"""

from __future__ import annotations

import signal
from collections.abc import Callable


class Interrupt:
    """Whether (and by which signal) the run was asked to stop; cancels the running statement."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.audited = False  # the engine wrote the run's audit row for it
        self._cancel: Callable[[], None] | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        """``SIGINT (Ctrl-C)`` or ``SIGTERM``: how a message names what stopped the run."""
        if self.signum is None:
            return ""
        name = signal.Signals(self.signum).name
        return f"{name} (Ctrl-C)" if self.signum == signal.SIGINT else name

    def request(self, signum: int) -> None:
        """Ask the run to stop (the first signal decides the name); cancel what runs now.

        Called from a signal handler: the cancel goes on a connection of its own."""
        if self.signum is None:
            self.signum = signum
        cancel = self._cancel
        if cancel is not None:
            cancel()

    def attach(self, cancel: Callable[[], None] | None) -> None:
        """The cancel of the session the run uses now (None: no session open)."""
        self._cancel = cancel
