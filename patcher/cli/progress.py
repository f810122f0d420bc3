"""What a CLI run is doing, on stderr, while it runs (the engine's events, as lines).

Each migration gets a line when it starts and one when it ends (version, direction,
description, outcome, duration); a wait for the run's advisory lock gets one when it starts
(naming the holder) and one when it ends. On a terminal a live line under them counts the
seconds of a migration (or a no-transaction script's statement) that runs past ``LIVE_AFTER``
and of the lock wait, rewritten in place; elsewhere (a pipe, a CI log) only plain lines are
written, plus a "still running" line every ``HEARTBEAT`` seconds. ``--json`` (``--format
json``) runs with no printer at all. The Lambda never uses this module: its handler logs the
events it wants (``patcher.aws.handler``).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

LIVE_AFTER = 0.5  # seconds before a terminal shows the live line (short migrations: none)
TICK = 0.2  # seconds between live-line updates
HEARTBEAT = 30.0  # seconds between "still running" lines when not on a terminal
_CLEAR = "\r\x1b[K"  # carriage return, erase to the end of the line


@dataclass
class _Activity:
    """What the run is doing now, and since when (the clock's seconds)."""

    label: str
    since: float
    detail: str = ""
    beat: float = 0.0  # when the last "still running" line was written


class Progress:
    """An event sink (``Invocation.events``) that writes progress lines on ``stream``."""

    def __init__(
        self,
        stream: TextIO,
        *,
        live: bool,
        live_after: float = LIVE_AFTER,
        tick: float = TICK,
        heartbeat: float = HEARTBEAT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream, self.live = stream, live
        self.live_after, self.tick, self.heartbeat, self.clock = live_after, tick, heartbeat, clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._now: _Activity | None = None
        self._shown = False  # a live line is on screen
        self._names: dict[tuple[int, str], str] = {}
        self._waiting = False
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "lock_waiting": self._lock_waiting,
            "lock_acquired": self._lock_done,
            "lock_not_needed": self._lock_not_needed,
            "migration_started": self._started,
            "batch_started": self._batch,
            "statement_started": self._statement,
            "migration": self._ended,
            "backfill_range": self._backfill_range,
            "backfill_waiting": self._backfill_waiting,
            "backfill": self._backfill,
        }

    def __call__(self, name: str, fields: dict[str, Any]) -> None:
        handler = self._handlers.get(name)
        if handler is None:
            return
        with self._lock:
            handler(fields)
        self._start_ticker()

    def close(self) -> None:
        """Stop the ticker and take the live line off the screen."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._now = None
            self._erase()

    # -- the events ------------------------------------------------------------------------

    def _lock_waiting(self, fields: dict[str, Any]) -> None:
        holder = fields.get("holder") or "a session that has since let go"
        pid, limit = fields.get("holder_pid"), fields.get("wait_limit_ms")
        detail = f"held by pid {pid}" if pid else "(the holder let go)"
        detail = f"of {duration(limit / 1000)}, {detail}" if limit else detail
        if not self._waiting:
            self._waiting = True
            self._line(f"waiting for the migration lock, held by {holder}")
            since = self.clock() - fields.get("waited_ms", 0) / 1000
            self._now = _Activity("waiting for the migration lock", since, detail, since)
        elif self._now is not None:
            self._now.detail = detail

    def _lock_done(self, fields: dict[str, Any]) -> None:
        if self._waiting:  # a free lock is not worth a line
            self._waiting, self._now = False, None
            self._line(f"got the migration lock after {duration(fields['lock_wait_ms'] / 1000)}")

    def _lock_not_needed(self, fields: dict[str, Any]) -> None:
        if self._waiting:
            self._waiting, self._now = False, None
            waited = duration(fields["lock_wait_ms"] / 1000)
            self._line(f"stopped waiting after {waited}: the other run applied every version")

    def _started(self, fields: dict[str, Any]) -> None:
        key = (fields["version"], fields["direction"])
        self._names[key] = name = _label(*key, fields.get("description"))
        mode = "" if fields.get("transactional", True) else ", no transaction"
        self._line(f"{_label(*key, fields.get('description'), mode)} started")
        now = self.clock()
        self._now = _Activity(f"{name} running", now, beat=now)

    def _batch(self, fields: dict[str, Any]) -> None:
        """Several migrations in one round trip: each reports its end; the live line covers all."""
        span = f"versions {fields['first']} to {fields['last']} {fields['direction']}"
        for version, description in fields.get("migrations", []):
            key = (version, fields["direction"])
            self._names[key] = _label(*key, description)
        self._line(f"{span} started ({fields['count']} migrations in one round trip)")
        now = self.clock()
        self._now = _Activity(f"{span} running", now, beat=now)

    def _statement(self, fields: dict[str, Any]) -> None:
        count = fields.get("count", 1)
        at = f"statement {fields['index'] + 1} of {count} (line {fields.get('line')})"
        text = fields.get("text", "")
        if count > 1:
            self._line(f"  {at} started: {text}")
        if self._now is not None:
            self._now.detail = f"{at}: {text}" if count > 1 else text

    def _ended(self, fields: dict[str, Any]) -> None:
        key = (fields["version"], fields["direction"])
        name = self._names.pop(key, None) or _label(*key, None)
        took = duration((fields.get("duration_ms") or 0) / 1000)
        state = fields.get("state", "done")
        self._now = None
        if state == "failed":
            why = f": {fields['error']}" if fields.get("error") else ""
            self._line(f"{name} failed after {took}{why}")
        else:
            self._line(f"{name} {state} in {took}")

    def _backfill_range(self, fields: dict[str, Any]) -> None:
        """A backfill's range committed: rows, rate and time left on the live line."""
        if self._now is not None:
            self._now.detail = backfill_detail(fields)

    def _backfill_waiting(self, fields: dict[str, Any]) -> None:
        if self._now is not None:
            lag, limit = fields["lag_ms"] / 1000, fields["max_lag_ms"] / 1000
            self._now.detail = f"waiting: replica lag {duration(lag)} > {duration(limit)}"

    def _backfill(self, fields: dict[str, Any]) -> None:
        if fields.get("outcome") == "partial":
            self._line(
                f"version {fields['version']} backfill stopped: {fields['rows_done']:,} rows "
                f"in {fields['ranges_done']} ranges so far; the next run resumes"
            )

    # -- writing ---------------------------------------------------------------------------

    def _line(self, text: str) -> None:
        """A permanent line (above the live one, which the next tick redraws)."""
        self._erase()
        self._write(f"patcher: {text}\n")

    def _erase(self) -> None:
        if self._shown:
            self._write(_CLEAR)
            self._shown = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away: progress is not worth a crash
            pass

    def _start_ticker(self) -> None:
        if self._ticker is None and not self._stop.is_set():
            self._ticker = threading.Thread(target=self._run_ticker, daemon=True)
            self._ticker.start()

    def _run_ticker(self) -> None:
        while not self._stop.wait(self.tick):
            with self._lock:
                self.refresh()

    def refresh(self) -> None:
        """One tick: redraw the live line (terminal) or write a heartbeat (elsewhere)."""
        now = self._now
        if now is None:
            return
        elapsed = self.clock() - now.since
        if elapsed < self.live_after:
            return
        detail = f" {now.detail}" if now.detail else ""
        if self.live:
            text = f"  {now.label} {duration(elapsed)}{detail}"
            width = shutil.get_terminal_size(fallback=(100, 24)).columns - 1
            self._write(_CLEAR + text[: max(width, 20)])
            self._shown = True
        elif self.clock() - now.beat >= self.heartbeat:
            now.beat = self.clock()
            self._line(f"  still {now.label}: {duration(elapsed)}{detail}")


def _label(version: int, direction: str, description: str | None, mode: str = "") -> str:
    about = f"{description or ''}{mode}".removeprefix(", ")
    return f"version {version} {direction}" + (f" ({about})" if about else "")


def backfill_detail(fields: dict[str, Any]) -> str:
    """``120,000/~1,000,000 rows (12%), 48,000/s, ~18.3s left`` (a terminal's width fits it)."""
    done, estimated, rate = (
        fields["rows_done"],
        fields.get("rows_estimated"),
        fields.get("rows_per_s"),
    )
    text = f"{done:,} rows"
    if estimated:
        text = f"{done:,}/~{estimated:,} rows ({min(100, done * 100 // estimated)}%)"
    if rate:
        text += f", {rate:,}/s"
        if estimated and estimated > done:
            text += f", ~{duration((estimated - done) / rate)} left"
    return text


def duration(seconds: float) -> str:
    """340ms, 5.20s, 12.3s, 4m 05s, 1h 02m."""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    return f"{minutes // 60}h {minutes % 60:02d}m"


def for_stream(stream: TextIO) -> Progress:
    """The printer for ``stream``: a live line on a terminal (not TERM=dumb), plain lines
    elsewhere."""
    try:
        tty = stream.isatty()
    except (OSError, ValueError):
        tty = False
    return Progress(stream, live=tty and os.environ.get("TERM") != "dumb")
