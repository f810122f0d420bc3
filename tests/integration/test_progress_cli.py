"""Watching a run: the ``patcher`` command's progress lines on stderr, read while it runs.

Under a pseudo-terminal the live line counts the seconds of a slow migration (and of a lock
wait) before the run ends; without a terminal the lines are plain; ``--json`` adds nothing.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from patcher.db.advisory_lock import lock_key
from tests.fixtures.engine import MigrationDir
from tests.fixtures.postgres import PgConnect

# Both transactional migrations go in one round trip: the live line covers the batch.
LIVE = re.compile(r"\r\x1b\[K  versions 1 to 2 up running (\d+\.\d+)s")
BATCH_STARTED = "patcher: versions 1 to 2 up started (2 migrations in one round trip)"


class Terminal:
    """The patcher command with its stderr on a pseudo-terminal, read as it writes."""

    def __init__(self, *args: str) -> None:
        master, slave = pty.openpty()
        env = {**os.environ, "TERM": "xterm", "COLUMNS": "200", "PATCHER_LOCK_WAIT_SECONDS": "60"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "patcher.cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            env=env,
        )
        os.close(slave)
        self.master, self.seen = master, ""

    def read_until(self, done: Callable[[str], bool], timeout: float = 30) -> str:
        """Read the terminal until ``done(all read so far)``; fail on timeout or EOF first."""
        deadline = time.monotonic() + timeout
        while not done(self.seen):
            if time.monotonic() > deadline:
                pytest.fail(f"timed out; the terminal showed: {self.seen!r}")
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: the command exited and closed the terminal
                chunk = b""
            if not chunk:
                pytest.fail(f"the command ended first; the terminal showed: {self.seen!r}")
            self.seen += chunk.decode()
        return self.seen

    def finish(self) -> int:
        self.read_until(lambda text: "applied in" in text.rsplit("started", 1)[-1])
        code = self.proc.wait(timeout=30)
        os.close(self.master)
        return code


def _source(mdir: MigrationDir, dsn: str) -> list[str]:
    return ["--source", str(mdir.path), "--database-url", dsn]


def test_a_terminal_sees_the_slow_migration_running_before_it_ends(
    mdir: MigrationDir, pg_dsn: str, pg_connect: PgConnect
) -> None:
    mdir.pair("1", "table", "CREATE TABLE t (id int);")
    mdir.pair("2", "slow", "SELECT pg_sleep(4);")
    term = Terminal("migrate", *_source(mdir, pg_dsn))
    shown = term.read_until(lambda text: any(float(s) >= 1 for s in LIVE.findall(text)))
    assert term.proc.poll() is None  # the run is still going ...
    sleeping = pg_connect().execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' "
        "AND state = 'active' AND pid <> pg_backend_pid()"
    )
    assert sleeping.fetchone() == (1,)  # ... inside the slow statement
    assert BATCH_STARTED + "\r\n" in shown
    assert "applied" not in shown  # each migration's end is known when the round trip returns
    term.read_until(lambda text: "(slow) applied in" in text)
    assert term.finish() == 0
    assert re.search(r"patcher: version 1 up \(table\) applied in \d+ms\r\n", term.seen)
    assert re.search(r"\r\npatcher: version 2 up \(slow\) applied in 4\.\d\ds\r\n", term.seen)


def test_a_terminal_sees_the_lock_wait_and_who_holds_the_lock(
    mdir: MigrationDir, pg_dsn: str, pg_connect: PgConnect
) -> None:
    mdir.pair("1", "table", "CREATE TABLE t (id int);")
    holder = pg_connect()
    holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("public", "schema_migrations"),))
    pid = holder.info.backend_pid
    term = Terminal("migrate", *_source(mdir, pg_dsn))
    waiting = re.compile(
        rf"waiting for the migration lock (\d+\.\d+)s of 1m 00s, held by pid {pid}"
    )
    shown = term.read_until(lambda text: any(float(s) >= 1 for s in waiting.findall(text)))
    assert f"patcher: waiting for the migration lock, held by pid {pid} (" in shown
    assert "started" not in shown
    holder.close()
    assert term.finish() == 0
    assert re.search(r"patcher: got the migration lock after \d+\.\d\ds\r\n", term.seen)
    assert "patcher: version 1 up (table) started" in term.seen


def test_without_a_terminal_the_lines_are_plain(mdir: MigrationDir, pg_dsn: str) -> None:
    mdir.pair("1", "table", "CREATE TABLE t (id int);")
    mdir.pair("2", "slow", "SELECT pg_sleep(1);")
    mdir.write("3_idx.up.sql", "-- patcher:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (id);")
    done = subprocess.run(
        [sys.executable, "-m", "patcher.cli", "migrate", *_source(mdir, pg_dsn)],
        capture_output=True,
        text=True,
        env={**os.environ, "TERM": "xterm"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "\x1b" not in done.stderr
    lines = [re.sub(r"\d+(\.\d+)?(ms|s)$", "<t>", line) for line in done.stderr.splitlines()]
    assert lines == [
        BATCH_STARTED,
        "patcher: version 1 up (table) applied in <t>",
        "patcher: version 2 up (slow) applied in <t>",
        "patcher: version 3 up (idx, no transaction) started",
        "patcher: version 3 up (idx) applied in <t>",
    ]
    assert "VERSION" in done.stdout  # the table still goes to stdout, after the run


def test_a_failed_migration_says_so_on_stderr(mdir: MigrationDir, pg_dsn: str) -> None:
    mdir.pair("1", "bad", "SELECT 1/0;")
    done = subprocess.run(
        [sys.executable, "-m", "patcher.cli", "migrate", *_source(mdir, pg_dsn)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert re.fullmatch(
        r"patcher: version 1 up \(bad\) started\n"
        r"patcher: version 1 up \(bad\) failed after \d+ms: MigrationFailed\n",
        done.stderr,
    )


def test_json_output_adds_nothing_on_stderr(mdir: MigrationDir, pg_dsn: str) -> None:
    mdir.pair("1", "table", "CREATE TABLE t (id int);")
    mdir.pair("2", "slow", "SELECT pg_sleep(0.7);")
    master, slave = pty.openpty()  # even on a terminal
    done = subprocess.run(
        [sys.executable, "-m", "patcher.cli", "migrate", "--json", *_source(mdir, pg_dsn)],
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
        timeout=60,
    )
    os.close(slave)
    try:
        written = os.read(master, 4096)  # all the command wrote on the terminal, if anything
    except OSError:  # EIO: it closed the terminal without writing to it
        written = b""
    os.close(master)
    assert done.returncode == 0
    assert written == b""
    assert json.loads(done.stdout)["status"] == "applied"
