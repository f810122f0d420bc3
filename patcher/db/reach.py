"""Reaching the writer (issue 33): connection attempts with backoff within a budget, and the
check that the session is on the writer, before anything else is sent.

Aurora is not always there at the first try: a Serverless v2 cluster paused at 0 ACUs holds
the first connection ~15 s while it resumes; a writer failover refuses connections for
1-30 s; after it the cluster endpoint's DNS may name the old writer, now a reader, for a
while. ``Reach.open`` tries again (0.5 s, doubling to 5 s, jittered) for as long as
``PATCHER_CONNECT_BUDGET_SECONDS`` allows (never past the Lambda time left before the margin;
at least one attempt), each attempt announced as a ``database_attempt`` event (the handler
logs it). A failure that waiting cannot change (credentials, TLS, the database name) ends at
once. Every session answers one query first, the probe: whether it is in recovery (a hot
standby: an Aurora reader), whether its transactions default to read-only, which server
answered, and, on PostgreSQL 14+, the client check the runner sets anyway (so the probe costs
no round trip). A request that writes and reaches a reader disconnects and tries again within
the same budget, and names the host it reached if the budget runs out.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import psycopg

from patcher.core.errors import DatabaseUnavailable
from patcher.db import connection
from patcher.db.connection import ConnectFailure

Attempt = Callable[[int], "psycopg.Connection[Any] | ConnectFailure"]
"""One connection attempt with the given connect_timeout (seconds)."""

FIRST_INTERVAL_S, MAX_INTERVAL_S = 0.5, 5.0
ATTEMPT_TIMEOUT_S = 10  # libpq's connect_timeout for one attempt (libpq treats < 2 as 2)


@dataclass(frozen=True)
class Writer:
    """What the probe learned of the server a session reached."""

    in_recovery: bool
    read_only: bool
    server: str  # "host:port (server address:port)": which instance answered

    @property
    def writable(self) -> bool:
        return not (self.in_recovery or self.read_only)

    def refusal(self) -> DatabaseUnavailable:
        """Why nothing may be written on this session (SPEC: the writer endpoint)."""
        why = (
            "a hot standby (read replica) in recovery"
            if self.in_recovery
            else "default_transaction_read_only is on for this database or role"
        )
        return DatabaseUnavailable(
            f"the database is read-only: {why} ({self.server}). Nothing was changed. Point "
            "PATCHER_DB_SECRET_ARN / PATCHER_DATABASE_URL at the cluster's writer endpoint"
        )


@dataclass
class Reach:
    """How one invocation reaches its database; counts what every session opened cost.

    ``budget_s``: how long one reach may keep trying (each session the run opens has its own,
    so a run that loses its session waits for the failover again); ``time_left_s``: seconds
    left before the Lambda margin, or None outside Lambda; ``writer``: the request writes, so
    a reader is retried, then refused. ``waited_ms`` and ``attempts`` sum over the run."""

    budget_s: float = 0.0
    time_left_s: Callable[[], float] | None = None
    writer: bool = False
    emit: Callable[[str, dict[str, Any]], None] = field(default=lambda _n, _f: None)
    waited_ms: int = 0
    attempts: int = 0
    retried: bool = False  # some session needed more than one attempt
    answered: bool = False  # some session was opened

    def open(
        self,
        attempt: Attempt,
        fail: Callable[[ConnectFailure, str], DatabaseUnavailable],
        connect_timeout: int = ATTEMPT_TIMEOUT_S,
    ) -> tuple[psycopg.Connection[Any], Writer]:
        """A session that answered the probe (on the writer, when ``writer``), or the
        ``DatabaseUnavailable`` the last attempt ended in, saying what was tried."""
        started = time.monotonic()
        end = started + self.budget_s
        if self.time_left_s is not None:
            end = min(end, started + self.time_left_s())
        interval, number = FIRST_INTERVAL_S, 0
        try:
            while True:
                number += 1
                self.attempts += 1
                tried = time.monotonic()
                left = math.ceil(end - tried)
                whole = number == 1 and left <= 0  # no budget: one attempt, as the caller bounds
                got = attempt(connect_timeout if whole else max(2, min(connect_timeout, left)))
                result = _probe(got) if not isinstance(got, ConnectFailure) else got
                took_ms = int((time.monotonic() - tried) * 1000)
                if isinstance(result, Writer) and (result.writable or not self.writer):
                    self._tell(number, "connected", took_ms, result.server)
                    self.answered = True
                    assert not isinstance(got, ConnectFailure)
                    return got, result
                if isinstance(result, Writer):
                    assert not isinstance(got, ConnectFailure)
                    got.close()
                    if not result.in_recovery:  # a read-only default: waiting will not help
                        raise result.refusal()
                    self._tell(number, "reader", took_ms, result.server)
                else:
                    self._tell(number, "failed", took_ms, result.reason)
                    if not result.transient:
                        raise fail(result, "")
                left_s = end - time.monotonic()
                if left_s <= 0:  # the budget is spent: the last attempt came at its end
                    raise self._gave_up(result, number, started, fail)
                pause = min(interval * random.uniform(0.5, 1.0), left_s)
                self.retried = True
                time.sleep(pause)
                interval = min(interval * 2, MAX_INTERVAL_S)
        finally:
            self.waited_ms += int((time.monotonic() - started) * 1000)

    def _tell(self, number: int, outcome: str, took_ms: int, detail: str) -> None:
        self.emit(
            "database_attempt",
            {"attempt": number, "outcome": outcome, "duration_ms": took_ms, "detail": detail},
        )

    def _gave_up(
        self,
        last: Writer | ConnectFailure,
        number: int,
        started: float,
        fail: Callable[[ConnectFailure, str], DatabaseUnavailable],
    ) -> DatabaseUnavailable:
        spent = time.monotonic() - started
        tried = (
            f" ({number} attempt{'s' if number > 1 else ''} over {spent:.1f} s, the most "
            f"PATCHER_CONNECT_BUDGET_SECONDS ({self.budget_s:g} s) and the Lambda time left "
            "allow; the database did not answer as a writer in that time: invoke again, or "
            "raise the budget for a cluster that resumes or fails over more slowly)"
        )
        if isinstance(last, ConnectFailure):
            return fail(last, tried)
        return DatabaseUnavailable(
            f"the database reached is a read-only reader, not the writer: {last.server} is a "
            f"hot standby in recovery{tried}. Nothing was changed. After a failover the cluster "
            "endpoint's DNS can name the old writer for a while; if it persists, point "
            "PATCHER_DB_SECRET_ARN / PATCHER_DATABASE_URL at the cluster's writer endpoint"
        )


_PROBE = (
    "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on', "
    "inet_server_addr()::text, inet_server_port()"
)
_PROBE_CHECK = (  # one simple-query message: nothing to bind
    f"{_PROBE}, set_config('client_connection_check_interval', "
    f"'{connection.CLIENT_CHECK_INTERVAL}', false)"
)


def _probe(conn: psycopg.Connection[Any]) -> Writer | ConnectFailure:
    """One round trip: what the server is (see ``Writer``), and the client check set (PG 14+:
    the backend ends itself when this client goes away mid-statement)."""
    try:
        row = None
        if conn.info.server_version >= 140000:
            with suppress(psycopg.errors.UndefinedObject):  # a fork without it: keepalives
                row = conn.execute(_PROBE_CHECK).fetchone()
        if row is None:
            row = conn.execute(_PROBE).fetchone()
    except psycopg.Error as exc:
        conn.close()
        return ConnectFailure(f"the new session failed: {connection.first_line(exc)}", True)
    assert row is not None
    return _writer(conn, row)


def writer_of(conn: psycopg.Connection[Any]) -> Writer:
    """The probe's answer on a session that is already open (its errors raised)."""
    row = conn.execute(_PROBE).fetchone()
    assert row is not None
    return _writer(conn, row)


def _writer(conn: psycopg.Connection[Any], row: tuple[Any, ...]) -> Writer:
    info = conn.info
    server = f"{info.host}:{info.port}"
    if row[2]:
        server += f" (server {row[2].split('/')[0]}:{row[3]})"
    return Writer(bool(row[0]), bool(row[1]), server)
