"""Aurora as it really behaves, on a local cluster (issue 33): ``AuroraProxy``, the crash
suite's PostgreSQL proxy (``crashkit.CrashProxy``) with a timetable of what the cluster
endpoint does with each new connection:

- ``resume(n)``: a Serverless v2 cluster resuming from 0 ACUs: every connection that arrives
  in the next ``n`` seconds is held (accepted, not answered) until they are over, then passed on;
- ``outage(n)``: a writer failing over: every connection in the next ``n`` seconds is refused
  (accepted and reset at once: the client sees its connection reset, as from a host whose
  database is down);
- ``stale(n)``: the cluster endpoint's DNS still naming the old writer, now a reader: every
  connection in the next ``n`` seconds goes to ``standby`` (a real streaming replica,
  ``tests/fixtures/standby.py``), later ones to the primary again;
- ``refuse_after_cut(n)``: a failover in the middle of a run: when the proxy cuts a connection
  (``cut_at``, as in the crash suite), connections are refused for the ``n`` seconds after.

``log`` records what it did with each connection (index, seconds since the proxy started,
what). Windows start when they are set, so a test sets them just before it invokes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from tests.faults.crashkit import Connection, CrashProxy

Kind = Literal["hold", "refuse", "standby"]


@dataclass(frozen=True)
class Window:
    kind: Kind
    start: float
    end: float


class AuroraProxy(CrashProxy):
    """A ``CrashProxy`` that also holds, refuses or misroutes new connections on a timetable."""

    def __init__(
        self, upstream: tuple[str, int], *, standby: tuple[str, int] | None = None, **kwargs: Any
    ) -> None:
        self.standby = standby
        self.windows: list[Window] = []
        self.log: list[tuple[int, float, str]] = []
        self.after_cut: float = 0.0
        self._born = time.monotonic()
        self._plan_lock = threading.Lock()
        super().__init__(upstream, **kwargs)

    def _window(self, kind: Kind, seconds: float) -> AuroraProxy:
        now = time.monotonic()
        with self._plan_lock:
            self.windows.append(Window(kind, now, now + seconds))
        return self

    def resume(self, seconds: float) -> AuroraProxy:
        return self._window("hold", seconds)

    def outage(self, seconds: float) -> AuroraProxy:
        return self._window("refuse", seconds)

    def stale(self, seconds: float) -> AuroraProxy:
        assert self.standby is not None, "stale() needs a standby"
        return self._window("standby", seconds)

    def refuse_after_cut(self, seconds: float) -> AuroraProxy:
        self.after_cut = seconds
        return self

    def did(self, what: str) -> list[int]:
        """The indexes of the connections the proxy treated so."""
        return [index for index, _, done in self.log if done == what]

    # ------------------------------------------------------------------ CrashProxy hooks

    def _admit(self, conn: Connection) -> tuple[str, int] | None:
        now = time.monotonic()
        with self._plan_lock:
            current = [w for w in self.windows if w.start <= now < w.end]
        route, what = self.upstream, "primary"
        for window in current:
            if window.kind == "refuse":
                self._note(conn, "refused")
                return None
            if window.kind == "hold":
                time.sleep(max(0.0, window.end - time.monotonic()))
                what = "held"
            elif window.kind == "standby" and self.standby is not None:
                route, what = self.standby, "standby"
        self._note(conn, what)
        return route

    def _cutting(self, conn: Connection) -> None:
        if self.after_cut:
            self.outage(self.after_cut)

    def _note(self, conn: Connection, what: str) -> None:
        with self._plan_lock:
            self.log.append((conn.index, round(time.monotonic() - self._born, 2), what))
