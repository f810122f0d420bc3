"""Helpers for the fault suite: secrets to scan for, a fake Lambda context, a cluster of our own
that may be restarted, a fault-injecting S3 proxy, and small polling helpers."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from patcher.db import lock_key
from tests.fixtures.engine import query
from tests.fixtures.postgres import PgServer
from tests.fixtures.s3 import FAKE_SECRET
from tests.fixtures.standby import as_owner, streaming_standby

DB_PASSWORD = "pw-Never-Print-3f9c1e"  # the password of role ``app`` on ``own_cluster``
SESSION_TOKEN = "tok-Never-Print-8d2a7b"  # AWS_SESSION_TOKEN in the ``aws`` fixture
SECRETS = (FAKE_SECRET, DB_PASSWORD, SESSION_TOKEN)
KEY = lock_key("public", "schema_migrations")
# A long statement whose length a test controls per database (see set_sleep).
SLEEP = "SELECT pg_sleep(coalesce(nullif(current_setting('faults.sleep', true), ''), '0')::float);"


def find_leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@dataclass
class LeakScan:
    """Log records and results seen during one test (filled by the autouse fixture)."""

    texts: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.texts.append(text)

    def check(self) -> None:
        for text in self.texts:
            leaks = find_leaks(text)
            assert not leaks, f"secret(s) {leaks!r} in: {text[:2000]}"


# --------------------------------------------------------------------------- small helpers


@dataclass
class FakeContext:
    """The parts of a Lambda context the handler reads."""

    time_left_ms: int = 900_000
    aws_request_id: str = "req-faults"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:StackFlowPatcher"
    function_name: str = "StackFlowPatcher"
    memory_limit_in_mb: int = 512
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return self.time_left_ms


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def set_sleep(dsn: str, seconds: float) -> None:
    """Sessions opened from now on sleep this long in the SLEEP statement."""
    dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    query(dsn, f"ALTER DATABASE \"{dbname}\" SET faults.sleep = '{seconds}'")


def sleeping_pid(dsn: str, app_like: str = "stackflowpatcher:%") -> int | None:
    """The pid of a patcher session currently running the SLEEP statement (by its wait event:
    in a batch, pg_sleep may sit past the 1 kB of the message that pg_stat_activity shows)."""
    rows = query(
        dsn,
        "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s AND state = 'active' "
        "AND wait_event = 'PgSleep' AND datname = current_database()",
        (app_like,),
    )
    return rows[0][0] if rows else None


def lock_is_free(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (KEY,)).fetchone() == (True,)
        if got:
            conn.execute("SELECT pg_advisory_unlock(%s)", (KEY,))
        return got


def in_background(fn: Callable[[], dict[str, Any]]) -> Future[dict[str, Any]]:
    pool = ThreadPoolExecutor(1)
    future = pool.submit(fn)
    pool.shutdown(wait=False)
    return future


# --------------------------------------------------------------------------- own cluster


@dataclass
class OwnCluster:
    """A cluster this suite may restart, reconfigure or replicate (role ``app`` has a password)."""

    server: PgServer
    run_as: str | None

    @property
    def workdir(self) -> Path:
        assert self.server.workdir is not None
        return self.server.workdir

    def _as_owner(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return as_owner(self.server, self.run_as, *args, check=check)

    @property
    def port(self) -> str:
        return str(psycopg.conninfo.conninfo_to_dict(self.server.admin_dsn)["port"])

    def app_dsn(self, dbname: str, password: str = DB_PASSWORD, port: str | None = None) -> str:
        return f"postgresql://app:{password}@127.0.0.1:{port or self.port}/{dbname}"

    def reset_admin(self) -> None:
        """Drop the admin connection if a restart broke it."""
        with contextlib.suppress(psycopg.Error):
            self.server.admin().execute("SELECT 1")

    def restart(self) -> None:
        data, log = str(self.workdir / "data"), str(self.workdir / "restart.log")
        self._as_owner("pg_ctl", "-D", data, "-l", log, "-m", "fast", "-w", "restart")
        self.reset_admin()

    @contextlib.contextmanager
    def standby(self) -> Iterator[str]:
        """A streaming hot standby of this cluster; yields the app DSN of its ``postgres``."""
        with streaming_standby(self.server, self.run_as) as standby:
            yield self.app_dsn("postgres", port=str(standby.port))


def start_own_cluster(bin_dir: Path, run_as: str | None) -> OwnCluster:
    from tests.fixtures.postgres import start_local_cluster

    server = start_local_cluster(bin_dir, run_as=run_as)
    hba = server.workdir / "data" / "pg_hba.conf"  # type: ignore[operator]
    hba.write_text("host all app 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    admin = server.admin()
    admin.execute("SET password_encryption = 'scram-sha-256'")
    admin.execute(f"CREATE ROLE app LOGIN SUPERUSER PASSWORD '{DB_PASSWORD}'")
    admin.execute("SELECT pg_reload_conf()")
    return OwnCluster(server, run_as)


# --------------------------------------------------------------------------- S3 fault proxy


@dataclass(frozen=True)
class Seen:
    """One request as it arrived at the proxy, headers lower-cased."""

    method: str
    path: str
    query: str
    headers: dict[str, str]

    @property
    def operation(self) -> str:
        if "list-type=2" in self.query:
            return "ListObjectsV2"
        has_key = "/" in self.path.strip("/")
        if self.method == "GET" and has_key:
            return "GetObject"
        if self.method == "HEAD":
            return "HeadObject" if has_key else "HeadBucket"
        return f"{self.method} {self.path}"


@dataclass
class Fault:
    """What to do instead of (or before) forwarding matching requests, ``times`` times."""

    operation: str
    action: str  # "status" | "reset" | "truncate" | "before"
    times: int | None = 1
    status: int = 500
    code: str = "InternalError"
    callback: Callable[[Seen], None] | None = None
    when: Callable[[Seen], bool] = field(default=lambda seen: True)
    fired: int = 0

    def matches(self, seen: Seen) -> bool:
        left = self.times is None or self.fired < self.times
        return left and seen.operation == self.operation and self.when(seen)


class FaultProxy:
    """Forwards S3 requests to moto, injecting faults as told, recording what it received."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.seen: list[Seen] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def finish(self) -> None:
                with contextlib.suppress(OSError, ValueError):
                    super().finish()

            def _any(self) -> None:
                proxy.handle(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def inject(self, operation: str, action: str, **kwargs: Any) -> Fault:
        fault = Fault(operation, action, **kwargs)
        self.faults.append(fault)
        return fault

    def operations(self) -> list[str]:
        return [s.operation for s in self.seen]

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        path, _, query_string = h.path.partition("?")
        seen = Seen(h.command, path, query_string, {k.lower(): v for k, v in h.headers.items()})
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        with self.lock:
            self.seen.append(seen)
            fault = next((f for f in self.faults if f.matches(seen)), None)
            if fault is not None:
                fault.fired += 1
        action = fault.action if fault else "forward"
        if fault is not None and fault.callback is not None:
            fault.callback(seen)
        if action == "reset":  # RST instead of an answer
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.close()
            h.close_connection = True
            return
        if action == "status" and fault is not None:
            payload = (
                f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{fault.code}</Code>'
                f"<Message>injected {fault.code}</Message><RequestId>faults</RequestId></Error>"
            ).encode()
            self._reply(h, fault.status, [("Content-Type", "application/xml")], payload)
            return
        conn = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            conn.request(h.command, h.path, body=body, headers=dict(h.headers.items()))
            response = conn.getresponse()
            data = response.read()
            skip = ("content-length", "transfer-encoding", "connection")
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in skip]
        finally:
            conn.close()
        if action == "truncate":  # the full Content-Length promised, half the bytes sent
            h.send_response(response.status)
            for k, v in headers:
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)
            h.close_connection = True
            return
        self._reply(h, response.status, headers, data, head=h.command == "HEAD")

    @staticmethod
    def _reply(
        h: BaseHTTPRequestHandler,
        status: int,
        headers: list[tuple[str, str]],
        data: bytes,
        head: bool = False,
    ) -> None:
        h.send_response(status)
        for k, v in headers:
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if not head:
            h.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def env_without_patcher() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PATCHER_")}
