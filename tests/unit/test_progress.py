"""The CLI's progress printer: plain lines, the live line on a terminal, the lock wait."""

from __future__ import annotations

import io
from typing import Any

import pytest

from patcher.cli.progress import Progress, duration, for_stream


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The live line is cut to the terminal's width (shutil.get_terminal_size: COLUMNS, else the
    terminal pytest runs in): the tests' lines need up to 95 columns whatever that terminal is."""
    monkeypatch.setenv("COLUMNS", "200")


def printer(*, live: bool, heartbeat: float = 30.0) -> tuple[Progress, io.StringIO, Clock]:
    out, clock = io.StringIO(), Clock()
    # tick: an hour, so the thread never draws; each test calls refresh() as a tick would
    progress = Progress(out, live=live, tick=3600, live_after=0.5, heartbeat=heartbeat, clock=clock)
    return progress, out, clock


def started(version: int = 3, **extra: Any) -> dict[str, Any]:
    return {"version": version, "description": "add votes", "direction": "up", **extra}


def ended(version: int = 3, state: str = "applied", ms: int = 1520, **extra: Any) -> dict[str, Any]:
    return {"version": version, "direction": "up", "state": state, "duration_ms": ms, **extra}


def test_plain_lines_name_each_migration_as_it_starts_and_ends() -> None:
    progress, out, _ = printer(live=False)
    progress("migration_started", started())
    progress("migration", ended())
    progress("migration_started", started(4, transactional=False))
    progress("migration", ended(4, "failed", 20, error="MigrationFailed"))
    progress.close()
    assert out.getvalue().splitlines() == [
        "patcher: version 3 up (add votes) started",
        "patcher: version 3 up (add votes) applied in 1.52s",
        "patcher: version 4 up (add votes, no transaction) started",
        "patcher: version 4 up (add votes) failed after 20ms: MigrationFailed",
    ]


def test_a_terminal_gets_a_live_line_once_a_migration_runs_long() -> None:
    progress, out, clock = printer(live=True)
    progress("migration_started", started())
    clock.now += 0.3
    progress.refresh()
    assert "\r" not in out.getvalue()  # short so far: no live line
    clock.now += 12.0
    progress.refresh()
    assert out.getvalue().endswith("\r\x1b[K  version 3 up (add votes) running 12.3s")
    progress("migration", ended(ms=12400))
    assert out.getvalue().endswith(
        "running 12.3s\r\x1b[Kpatcher: version 3 up (add votes) applied in 12.4s\n"
    )  # the live line is erased before the permanent one
    progress.refresh()
    assert out.getvalue().endswith("applied in 12.4s\n")  # nothing runs: nothing drawn


def test_the_live_line_shows_the_running_statement_of_a_no_transaction_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the live line is cut to the terminal's width
    progress, out, clock = printer(live=True)
    progress("migration_started", started(transactional=False))
    stmt = {"version": 3, "direction": "up", "count": 2, "line": 4}
    progress("statement_started", {**stmt, "index": 1, "text": "CREATE INDEX CONCURRENTLY i"})
    clock.now += 65
    progress.refresh()
    assert out.getvalue().endswith(
        "running 1m 05s statement 2 of 2 (line 4): CREATE INDEX CONCURRENTLY i"
    )
    assert "patcher:   statement 2 of 2 (line 4) started: CREATE INDEX CONCURRENTLY i\n" in (
        out.getvalue()
    )


def test_without_a_terminal_a_long_migration_gets_a_still_running_line() -> None:
    progress, out, clock = printer(live=False, heartbeat=30)
    progress("migration_started", started())
    clock.now += 20
    progress.refresh()
    clock.now += 11
    progress.refresh()
    clock.now += 5
    progress.refresh()  # within 30 s of the last one: no second line yet
    lines = out.getvalue().splitlines()
    assert lines[1:] == ["patcher:   still version 3 up (add votes) running: 31.0s"]
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_the_lock_wait_names_the_holder_then_says_when_it_ended() -> None:
    progress, out, clock = printer(live=True)
    progress("lock_acquired", {"lock_wait_ms": 0})
    assert out.getvalue() == ""  # a free lock is not worth a line
    waiting = {
        "waited_ms": 0,
        "wait_limit_ms": 60000,
        "holder": "pid 42 (deploy)",
        "holder_pid": 42,
    }
    progress("lock_waiting", waiting)
    clock.now += 3.2
    progress("lock_waiting", {**waiting, "waited_ms": 3200})
    progress.refresh()
    progress("lock_acquired", {"lock_wait_ms": 3300})
    text = out.getvalue()
    assert text.startswith("patcher: waiting for the migration lock, held by pid 42 (deploy)\n")
    assert "\r\x1b[K  waiting for the migration lock 3.20s of 1m 00s, held by pid 42" in text
    assert text.endswith("\r\x1b[Kpatcher: got the migration lock after 3.30s\n")
    assert text.count("waiting for the migration lock, held by") == 1


def test_a_wait_that_ends_because_the_other_run_did_the_work() -> None:
    progress, out, _ = printer(live=False)
    progress("lock_waiting", {"waited_ms": 10, "holder": None, "holder_pid": None})
    progress("lock_not_needed", {"lock_wait_ms": 1500})
    assert out.getvalue().splitlines() == [
        "patcher: waiting for the migration lock, held by a session that has since let go",
        "patcher: stopped waiting after 1.50s: the other run applied every version",
    ]


def test_close_erases_the_live_line_and_stops_the_ticker() -> None:
    progress, out, clock = printer(live=True)
    progress("migration_started", started())
    clock.now += 2
    progress.refresh()
    progress.close()
    assert out.getvalue().endswith("running 2.00s\r\x1b[K")
    assert progress._ticker is not None and not progress._ticker.is_alive()


def test_a_closed_stream_does_not_crash_the_run() -> None:
    progress, out, _ = printer(live=False)
    out.close()
    progress("migration_started", started())
    progress.close()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "0ms"), (0.34, "340ms"), (5.2, "5.20s"), (12.34, "12.3s"), (245, "4m 05s"),
     (3720, "1h 02m")],
)  # fmt: skip
def test_durations_read_at_a_glance(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_a_stream_that_is_not_a_terminal_gets_plain_lines() -> None:
    assert for_stream(io.StringIO()).live is False


def test_a_batch_gets_one_start_line_a_live_line_and_an_end_line_per_migration() -> None:
    progress, out, clock = printer(live=True)
    names = [[5, "a"], [6, "b"], [7, "c"]]
    progress("batch_started", {"count": 3, "direction": "up", "first": 5, "last": 7,
                               "migrations": names})  # fmt: skip
    clock.now += 2.0
    progress.refresh()
    assert out.getvalue().endswith("\r\x1b[K  versions 5 to 7 up running 2.00s")
    for version in (5, 6, 7):
        progress("migration", ended(version, ms=600))
    progress.close()
    lines = out.getvalue().replace("\r\x1b[K", "\n").splitlines()
    assert [line for line in lines if line.startswith("patcher:")] == [
        "patcher: versions 5 to 7 up started (3 migrations in one round trip)",
        "patcher: version 5 up (a) applied in 600ms",
        "patcher: version 6 up (b) applied in 600ms",
        "patcher: version 7 up (c) applied in 600ms",
    ]


def test_a_backfill_shows_rows_rate_and_time_left_on_the_live_line() -> None:
    progress, out, clock = printer(live=True)
    progress("migration_started", started())
    clock.now += 2.0
    fields = {"version": 3, "rows_done": 120_000, "rows_estimated": 1_000_000, "ranges_done": 12}
    progress("backfill_range", {**fields, "rows_per_s": 48_000, "range_ms": 200})
    progress.refresh()
    assert out.getvalue().endswith(
        "running 2.00s 120,000/~1,000,000 rows (12%), 48,000/s, ~18.3s left"
    )
    progress("backfill_waiting", {"version": 3, "lag_ms": 3200, "max_lag_ms": 1000})
    progress.refresh()
    assert out.getvalue().endswith("waiting: replica lag 3.20s > 1.00s")
    progress("backfill", {**fields, "outcome": "partial"})
    assert "version 3 backfill stopped: 120,000 rows in 12 ranges so far" in out.getvalue()
