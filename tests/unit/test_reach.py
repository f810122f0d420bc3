"""Reaching the writer (issue 33, ``patcher.db.reach``): attempts with backoff within the
budget and the Lambda time, failures that waiting cannot change ended at once, readers retried
for a request that writes and named when the budget runs out. Fake attempts and probes; the
real proxy, standby and handler are in tests/faults/test_faults_aurora.py."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from patcher.core.errors import DatabaseUnavailable
from patcher.db import connection, reach
from patcher.db.connection import ConnectFailure
from patcher.db.reach import Reach, Writer

WRITER = Writer(False, False, "writer:5432")
READER = Writer(True, True, "reader:5432 (server 10.0.0.2:5432)")
REFUSED = ConnectFailure("connection refused", transient=True)
BAD_PASSWORD = ConnectFailure("password authentication failed for user app", transient=False)


class Session:
    def __init__(self, writer: Writer) -> None:
        self.writer, self.closed = writer, False

    def close(self) -> None:
        self.closed = True


def script(*steps: Any) -> tuple[list[Any], Any]:
    """An attempt function that answers ``steps`` in order (a failure or a Writer)."""
    made: list[Any] = []

    def attempt(timeout: int) -> Any:
        step = steps[min(len(made), len(steps) - 1)]
        made.append((timeout, step))
        return step if isinstance(step, ConnectFailure) else Session(step)

    return made, attempt


def fail(failure: ConnectFailure, tried: str) -> DatabaseUnavailable:
    return DatabaseUnavailable(f"cannot connect: {failure.reason}{tried}")


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reach, "FIRST_INTERVAL_S", 0.01)
    monkeypatch.setattr(reach, "MAX_INTERVAL_S", 0.05)
    monkeypatch.setattr(reach, "_probe", lambda session: session.writer)


def test_a_transient_failure_is_retried_and_each_attempt_told() -> None:
    events: list[dict[str, Any]] = []
    made, attempt = script(REFUSED, REFUSED, WRITER)
    r = Reach(budget_s=5, emit=lambda _name, fields: events.append(fields))
    _, writer = r.open(attempt, fail)
    assert writer == WRITER and len(made) == 3 and r.attempts == 3
    assert [e["outcome"] for e in events] == ["failed", "failed", "connected"]
    assert r.retried and r.answered and r.waited_ms >= 10


def test_a_permanent_failure_is_not_retried() -> None:
    made, attempt = script(BAD_PASSWORD, WRITER)
    with pytest.raises(DatabaseUnavailable, match="password authentication failed"):
        Reach(budget_s=60).open(attempt, fail)
    assert len(made) == 1


def test_the_budget_bounds_the_attempts_and_the_error_says_so() -> None:
    made, attempt = script(REFUSED)
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match=r"attempts over 0\.[0-9] s") as caught:
        Reach(budget_s=0.3).open(attempt, fail)
    assert 0.2 < time.monotonic() - started < 0.6
    assert "PATCHER_CONNECT_BUDGET_SECONDS (0.3 s)" in caught.value.message
    assert len(made) >= 3


def test_the_lambda_time_left_bounds_the_budget_but_one_attempt_is_always_made() -> None:
    made, attempt = script(REFUSED)
    with pytest.raises(DatabaseUnavailable, match="1 attempt over"):
        Reach(budget_s=60, time_left_s=lambda: -5.0).open(attempt, fail, 10)
    assert made == [(10, REFUSED)]  # the connect timeout the caller bounded it to
    made, attempt = script(REFUSED)
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable):
        Reach(budget_s=60, time_left_s=lambda: 0.3).open(attempt, fail)
    assert time.monotonic() - started < 0.6
    assert {timeout for timeout, _ in made} == {2}  # libpq's least, not 10


def test_a_reader_is_retried_for_a_writing_request_then_named() -> None:
    made, attempt = script(READER, READER, WRITER)
    _, writer = Reach(budget_s=5, writer=True).open(attempt, fail)
    assert writer == WRITER and len(made) == 3
    made, attempt = script(READER)
    with pytest.raises(DatabaseUnavailable) as caught:
        Reach(budget_s=0.2, writer=True).open(attempt, fail)
    message = caught.value.message
    assert "read-only reader, not the writer" in message and READER.server in message


def test_a_reader_serves_a_request_that_only_reads() -> None:
    made, attempt = script(READER)
    _, writer = Reach(budget_s=5, writer=False).open(attempt, fail)
    assert writer == READER and len(made) == 1


def test_a_read_only_default_on_a_primary_is_refused_at_once() -> None:
    made, attempt = script(Writer(False, True, "writer:5432"))
    with pytest.raises(DatabaseUnavailable, match="default_transaction_read_only"):
        Reach(budget_s=60, writer=True).open(attempt, fail)
    assert len(made) == 1


@pytest.mark.parametrize(
    ("text", "transient"),
    [
        ('connection to server at "h", port 5432 failed: Connection refused', True),
        ("connection to server failed: timeout expired", True),
        ("server closed the connection unexpectedly", True),
        ("FATAL:  the database system is starting up", True),
        ("FATAL:  the database system is shutting down", True),
        ("FATAL:  sorry, too many clients already", True),
        ("SSL SYSCALL error: EOF detected", True),
        ('FATAL:  password authentication failed for user "app"', False),
        ('FATAL:  PAM authentication failed for user "app"', False),
        ('FATAL:  database "nope" does not exist', False),
        ('FATAL:  role "nope" does not exist', False),
        ('FATAL:  no pg_hba.conf entry for host "10.0.0.1", user "app"', False),
        ('could not translate host name "wrong.example" to address', False),
        ('server certificate for "x" does not match host name "y"', False),
        ("certificate verify failed", False),
    ],
)
def test_which_connect_failures_are_worth_waiting_for(text: str, transient: bool) -> None:
    assert connection._transient(psycopg.OperationalError(text), text) is transient
