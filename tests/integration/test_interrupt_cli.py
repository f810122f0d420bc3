"""Ctrl-C and SIGTERM to the real ``patcher`` process on a terminal (issue 28 item 3, SPEC 4
``Interrupted``): at the lock wait, in a transactional migration, in a no-transaction statement.

Each run stops as a deadline cut would: no traceback, a result saying what was left, exit 130
(SIGINT) or 143 (SIGTERM), the advisory lock free, the history matching the catalog, and an
audit row with outcome ``interrupted``. Ctrl-C is the terminal's: the command runs with the
pseudo-terminal as its controlling terminal and ``\\x03`` is typed on it.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from typing import Any

import pytest

from patcher.db.advisory_lock import lock_key
from tests.fixtures.engine import MigrationDir
from tests.fixtures.postgres import PgConnect

KEY = lock_key("public", "schema_migrations")


class Terminal:
    """``patcher ARGS`` with the pseudo-terminal as its controlling terminal (stdin, stdout
    and stderr on it), read as it writes."""

    def __init__(self, *args: str) -> None:
        master, slave = pty.openpty()

        def own_terminal() -> None:  # a session of its own whose terminal is the pty
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        env = {**os.environ, "TERM": "xterm", "COLUMNS": "200", "PATCHER_LOCK_WAIT_SECONDS": "60"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "patcher.cli", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            preexec_fn=own_terminal,
        )
        os.close(slave)
        self.master, self.seen = master, ""

    def _read(self, wait: float) -> bool:
        """Read what is there (waiting up to ``wait`` s); False once the command closed it."""
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: the command exited and closed the terminal
            return False
        self.seen += chunk.decode(errors="replace")
        return bool(chunk)

    def wait_for(self, done: Callable[[], bool], timeout: float = 30) -> None:
        """Keep reading until ``done()``; fail on timeout or when the command ends first."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out; the terminal showed: {self.seen!r}")
            if not self._read(0.1) or self.proc.poll() is not None:
                pytest.fail(f"the command ended first; the terminal showed: {self.seen!r}")

    def ctrl_c(self) -> None:
        os.write(self.master, b"\x03")  # the terminal turns it into SIGINT for the command

    def finish(self) -> int:
        """Read to the end; the exit status."""
        deadline = time.monotonic() + 30
        while self._read(0.2) and time.monotonic() < deadline:
            pass
        code = self.proc.wait(timeout=30)
        os.close(self.master)
        return code


def _args(mdir: MigrationDir, dsn: str, *more: str) -> list[str]:
    return ["migrate", "--source", str(mdir.path), "--database-url", dsn, *more]


def _advisory_locks(conn: Any) -> list[int]:
    """The pids holding an advisory lock on the run's key, once the run's sessions have ended.

    The run releases the lock and closes its session before it exits; the server ends that
    backend (and whatever lock levels the run's checks stacked) asynchronously, within
    milliseconds: wait for it, bounded, so that only another live session can fail this."""
    deadline = time.monotonic() + 10
    while conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'stackflowpatcher:%'"
    ).fetchone() != (0,):
        if time.monotonic() > deadline:
            pytest.fail("the run's session was still open 10 s after the command exited")
        time.sleep(0.05)
    rows = conn.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND ((classid::bigint << 32) | objid::bigint) = %s",
        (KEY,),
    ).fetchall()
    return [r[0] for r in rows]


def _history(conn: Any) -> list[tuple[int, bool]]:
    return conn.execute("SELECT version, dirty FROM schema_migrations ORDER BY version").fetchall()


def _audit(conn: Any) -> list[tuple[int | None, str, str | None]]:
    return conn.execute(
        "SELECT version, outcome, error FROM schema_migrations_log ORDER BY id"
    ).fetchall()


def _sleeping(conn: Any) -> Callable[[], bool]:
    def check() -> bool:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' "
            "AND state = 'active' AND pid <> pg_backend_pid()"
        ).fetchone()
        return bool(row and row[0])

    return check


def test_ctrl_c_while_waiting_for_the_lock(
    mdir: MigrationDir, pg_dsn: str, pg_connect: PgConnect
) -> None:
    mdir.pair("1", "table", "CREATE TABLE t (id int);")
    first = subprocess.run([sys.executable, "-m", "patcher.cli", *_args(mdir, pg_dsn)], timeout=60)
    assert first.returncode == 0
    mdir.pair("2", "more", "ALTER TABLE t ADD COLUMN c int;")
    holder = pg_connect()
    holder.execute("SELECT pg_advisory_lock(%s)", (KEY,))
    term = Terminal(*_args(mdir, pg_dsn))
    term.wait_for(lambda: "waiting for the migration lock" in term.seen)
    term.ctrl_c()
    assert term.finish() == 130
    out = term.seen
    assert "Traceback" not in out
    assert "patcher: SIGINT (Ctrl-C): stopping, then printing what was left" in out
    assert "migrate: failed" in out
    assert (
        "error: Interrupted: interrupted by SIGINT (Ctrl-C) while waiting for the migration "
        f"lock, held by pid {holder.info.backend_pid} (" in out
    )
    assert "nothing was run and nothing changed" in out
    check = pg_connect()
    assert _advisory_locks(check) == [holder.info.backend_pid]  # ours went with the run
    assert _history(check) == [(1, False)]
    assert check.execute("SELECT to_regclass('t'), count(*) FROM pg_attribute "
                         "WHERE attrelid = 't'::regclass AND attname = 'c'").fetchone() == (
        "t", 0,
    )  # fmt: skip
    version, outcome, error = _audit(check)[-1]
    assert (version, outcome) == (None, "interrupted")
    assert error is not None and "while waiting for the migration lock" in error


def test_ctrl_c_in_a_transactional_migration(
    mdir: MigrationDir, pg_dsn: str, pg_connect: PgConnect
) -> None:
    mdir.pair("1", "table", "CREATE TABLE t (id int);")
    mdir.pair("2", "slow", "INSERT INTO t VALUES (1);\nSELECT pg_sleep(30);\n")
    term = Terminal(*_args(mdir, pg_dsn))
    check = pg_connect()
    term.wait_for(_sleeping(check))
    term.ctrl_c()
    assert term.finish() == 130
    out = term.seen
    assert "Traceback" not in out
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "1 table up applied yes" in " ".join(lines)
    assert any(line.startswith("2 slow up failed yes") for line in lines)
    assert "pending: 2 slow" in out
    assert (
        "error: Interrupted: version 2 up was interrupted by SIGINT (Ctrl-C) at 2_slow.up.sql "
        "line 2, column 1 (statement 2). It was rolled back, nothing of it remains, and the "
        "migration lock was released. Run again to apply it." in out
    )
    assert _advisory_locks(check) == []
    assert _history(check) == [(1, False)]
    assert check.execute("SELECT count(*) FROM t").fetchone() == (0,)  # the INSERT rolled back
    assert [(v, o) for v, o, _ in _audit(check)] == [(1, "applied"), (2, "interrupted")]


def test_sigterm_in_a_no_transaction_statement(
    mdir: MigrationDir, pg_dsn: str, pg_connect: PgConnect
) -> None:
    mdir.pair("1", "table", "CREATE TABLE t (id int);")
    mdir.pair(
        "2",
        "index",
        "-- patcher:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n"
        "SELECT pg_sleep(30);\n",
    )
    term = Terminal(*_args(mdir, pg_dsn, "--json"))
    check = pg_connect()
    term.wait_for(_sleeping(check))
    term.proc.send_signal(signal.SIGTERM)
    assert term.finish() == 143
    assert "Traceback" not in term.seen
    result = json.loads(term.seen)  # --json: the result alone, nothing on stderr
    assert (result["ok"], result["status"], result["current_version"]) == (False, "failed", 1)
    error = result["error"]
    assert (error["type"], error["version"], error["statement"]) == ("Interrupted", 2, 2)
    assert error["message"].startswith(
        "version 2 up was interrupted by SIGTERM at 2_index.up.sql line 3, column 1 "
        "(statement 2). It is a no-transaction script: its first statement ran and stays in "
        "effect, and the version is marked dirty; the migration lock was released."
    )
    assert "run repair" in error["message"]
    states = [(m["version"], m["state"], m["transactional"]) for m in result["migrations"]]
    assert states == [(1, "applied", True), (2, "failed", False)]
    assert _advisory_locks(check) == []
    assert _history(check) == [(1, False), (2, True)]  # dirty, as the catalog says:
    valid = check.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_id'::regclass")
    assert valid.fetchone() == (True,)  # its first statement ran and stays
    assert [(v, o) for v, o, _ in _audit(check)] == [
        (1, "applied"),
        (2, "started"),
        (2, "interrupted"),
    ]
