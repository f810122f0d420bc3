"""Crash at every round trip (SPEC section 7 item 6): a PostgreSQL wire-protocol proxy that
resets the runner's connection at its k-th client message, and the invariant checker.

``CrashProxy`` sits between the runner and PostgreSQL on 127.0.0.1. It reads the startup
packet (answering an SSLRequest or GSSENCRequest with ``N``, so the session stays plaintext
and framed), then counts the client's messages (1-byte type, int32 length) per connection.
By default only the first connection through the proxy is cut; ``also`` cuts later ones too
(by their index: the runner reconnecting to learn whether a COMMIT in doubt committed, or to
write the audit row its lost session could not), a second fault in the same run:

- ``before``: the k-th message arrives and is not forwarded; the client's socket is reset
  (RST), the server's is shut down (FIN, at once) and then reset.
- ``after``: the k-th message is forwarded, the server's reply is read up to its
  ReadyForQuery and dropped, then both sockets are ended the same way: a COMMIT reaches the
  server and commits, but the runner never learns it.

Without ``cut_at`` it only counts, so a clean run tells how many cut points there are.
Threads are daemons, every socket has a timeout, and the proxy stops by itself after
``lifetime`` seconds or ``max_connections`` connections.

``check_invariants(dsn, migrations_dir)`` reads the expectations from the migrations
themselves: an up script declares what it creates on ``-- expect:`` lines (``table t1``,
``index i1``, ``column t1.c2``, ``function f5``, ``view v5``, ``marker 3`` = a row of table
``markers`` with that version) and is no-transaction when it has the directive.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import psycopg

Variant = Literal["before", "after"]

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CANCEL_REQUEST = 80877102
_ROUND_TRIP_ENDS = (b"Q", b"S", b"F", b"X")
_MAX_MESSAGE = 64 * 1024 * 1024  # a frame longer than this is not PostgreSQL: give up


class _Closed(Exception):
    """The peer closed its socket (or the proxy is stopping)."""


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 65536))
        if not chunk:
            raise _Closed
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read_frame(sock: socket.socket) -> tuple[bytes, bytes]:
    """One typed message: its type byte and the whole frame (type, length, body)."""
    head = _recv_exact(sock, 5)
    (length,) = struct.unpack("!i", head[1:])
    if length < 4 or length > _MAX_MESSAGE:
        raise _Closed
    return head[:1], head + _recv_exact(sock, length - 4)


def _reset(*socks: socket.socket) -> None:
    """Reset each socket: the peer gets a connection reset (RST), not a clean end.

    SO_LINGER 0 makes the close send an RST; the shutdown first wakes a thread blocked in
    ``recv`` on it (a bare close from another thread would leave the socket open)."""
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RD)
        with contextlib.suppress(OSError):
            sock.close()


@dataclass
class Connection:
    """What the proxy saw of one client connection."""

    index: int
    messages: list[bytes] = field(default_factory=list)  # type bytes of the client's messages
    queries: list[str] = field(default_factory=list)  # the text of each 'Q' / 'P', shortened
    query_at: dict[int, str] = field(default_factory=dict)  # message number -> that text
    cut: str | None = None  # how it was cut, when it was
    cut_query: str | None = None  # the last query text sent (or withheld) at the cut
    backend_pid: int | None = None  # the server's process, from its BackendKeyData
    server_port: int | None = None  # the proxy's port toward the server (pg_stat_activity's)
    finished: threading.Event = field(default_factory=threading.Event)  # both sides closed

    @property
    def count(self) -> int:
        return len(self.messages)

    def round_trips(self) -> list[tuple[int, int]]:
        """(first, last) message numbers (1-based) of each round trip: the messages up to
        and including a Query, Sync, FunctionCall or Terminate."""
        trips, first = [], 1
        for number, kind in enumerate(self.messages, start=1):
            if kind in _ROUND_TRIP_ENDS:
                trips.append((first, number))
                first = number + 1
        if first <= len(self.messages):
            trips.append((first, len(self.messages)))
        return trips

    def trip_text(self, trip: tuple[int, int]) -> str:
        """The query texts sent in the round trip ``(first, last)``."""
        numbers = range(trip[0], trip[1] + 1)
        return " | ".join(self.query_at[n] for n in numbers if n in self.query_at)


class CrashProxy:
    """A PostgreSQL proxy on 127.0.0.1 that cuts its first connection at message ``cut_at``,
    and connection ``i`` at message ``k`` for each ``i: (k, variant)`` of ``also``."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        cut_at: int | None = None,
        variant: Variant = "before",
        also: dict[int, tuple[int, Variant]] | None = None,
        lifetime: float = 120.0,
        max_connections: int = 32,
        reply_wait: float = 10.0,
    ) -> None:
        self.upstream = upstream
        self.cut_at, self.variant = cut_at, variant
        self.cuts = {**({0: (cut_at, variant)} if cut_at is not None else {}), **(also or {})}
        self.reply_wait = reply_wait
        self.max_connections = max_connections
        self.connections: list[Connection] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._servers: list[socket.socket] = []  # those toward the server (also in _sockets)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._deadline = time.monotonic() + lifetime
        threading.Thread(target=self._accept, name="crash-proxy", daemon=True).start()

    # ------------------------------------------------------------------ public

    @classmethod
    def for_dsn(cls, dsn: str, **kwargs: Any) -> CrashProxy:
        parts = urlsplit(dsn)
        return cls((parts.hostname or "127.0.0.1", parts.port or 5432), **kwargs)

    def dsn(self, dsn: str) -> str:
        """``dsn`` pointed at the proxy (host 127.0.0.1, the proxy's port)."""
        parts = urlsplit(dsn)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@127.0.0.1:{self.port}" if auth else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def first(self) -> Connection | None:
        with self._lock:
            return self.connections[0] if self.connections else None

    @property
    def cut(self) -> str | None:
        """How the first connection was cut, or None if it was not."""
        first = self.first
        return first.cut if first else None

    def wait_first(self, timeout: float = 5.0) -> Connection | None:
        """The first connection once the proxy is done with it (the client hung up, or it was
        cut): a run returns before its last message may have been read here."""
        first = self.first
        if first is not None:
            first.finished.wait(timeout)
        return first

    def wait_all(self, timeout: float = 5.0) -> list[Connection]:
        """Every connection, once the proxy is done with each (see ``wait_first``)."""
        end = time.monotonic() + timeout
        with self._lock:
            connections = list(self.connections)
        for conn in connections:
            conn.finished.wait(max(0.0, end - time.monotonic()))
        return connections

    def server_sockets(self) -> list[socket.socket]:
        """The proxy's sockets toward the server, one per connection, in order."""
        with self._lock:
            return list(self._servers)

    def cut_backends(self) -> set[int]:
        """The server processes of the connections the proxy cut (their sockets reset)."""
        with self._lock:
            return {c.backend_pid for c in self.connections if c.cut and c.backend_pid}

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            socks, servers = list(self._sockets), list(self._servers)
        for server in servers:
            _end_server(server)
        _reset(*socks)

    def __enter__(self) -> CrashProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ hooks (aurorakit)

    def _admit(self, conn: Connection) -> tuple[str, int] | None:
        """Where connection ``conn`` goes (it may wait first), or None to refuse it."""
        return self.upstream

    def _cutting(self, conn: Connection) -> None:
        """Called as the proxy cuts ``conn`` (before the client can see it)."""

    # ------------------------------------------------------------------ internals

    def _alive(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def _accept(self) -> None:
        try:
            while self._alive():
                try:
                    client, _ = self._listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                with self._lock:
                    if len(self.connections) >= self.max_connections:
                        _reset(client)
                        continue
                    conn = Connection(len(self.connections))
                    self.connections.append(conn)
                    self._sockets.append(client)
                threading.Thread(
                    target=self._serve, args=(conn, client), name="crash-proxy-conn", daemon=True
                ).start()
        finally:
            self.close()

    def _serve(self, conn: Connection, client: socket.socket) -> None:
        client.settimeout(max(1.0, self._deadline - time.monotonic()))
        server: socket.socket | None = None
        reply: _ServerPump | None = None
        try:
            upstream = self._admit(conn)
            if upstream is None:  # refused: the client sees its connection reset at once
                conn.cut = "refused"
                return
            startup = self._startup(client)
            server = socket.create_connection(upstream, timeout=10)
            for sock in (client, server):  # one small frame per write: no Nagle delay
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            server.settimeout(max(1.0, self._deadline - time.monotonic()))
            conn.server_port = server.getsockname()[1]
            with self._lock:
                self._sockets.append(server)
                self._servers.append(server)
            server.sendall(startup)
            if struct.unpack("!i", startup[4:8])[0] == _CANCEL_REQUEST:
                return  # a cancel request: the server answers by closing
            reply = _ServerPump(conn, server, client)
            reply.start()
            self._client_loop(conn, client, server, reply)
        except (_Closed, OSError):
            pass
        finally:
            _reset(client)
            if server is not None:
                _end_server(server)
                _reset(server)
            if reply is not None:
                reply.join(5.0)
            conn.finished.set()

    def _startup(self, client: socket.socket) -> bytes:
        """The startup packet, after declining SSL / GSS encryption with 'N'."""
        while True:
            head = _recv_exact(client, 8)
            length, code = struct.unpack("!ii", head)
            if length < 8 or length > 10000:
                raise _Closed
            packet = head + _recv_exact(client, length - 8)
            if code in (_SSL_REQUEST, _GSSENC_REQUEST):
                client.sendall(b"N")
                continue
            return packet

    def _client_loop(
        self,
        conn: Connection,
        client: socket.socket,
        server: socket.socket,
        reply: _ServerPump,
    ) -> None:
        cut_at, variant = self.cuts.get(conn.index, (None, "before"))
        while self._alive():
            kind, frame = _read_frame(client)
            conn.messages.append(kind)
            if kind in (b"Q", b"P"):
                conn.queries.append(_text(kind, frame))
                conn.query_at[conn.count] = _text(kind, frame, limit=None)
            if conn.count == cut_at:
                if variant == "after":
                    reply.swallow.set()
                    server.sendall(frame)
                    reply.ready.wait(self.reply_wait if kind in (b"Q", b"S") else 0.2)
                conn.cut_query = conn.queries[-1] if conn.queries else None
                conn.cut = f"{variant} message {conn.count} ({kind.decode()})"
                self._cutting(conn)
                _cut(client, server, reply)
                return
            server.sendall(frame)


def _cut(client: socket.socket, server: socket.socket, reply: _ServerPump) -> None:
    """Reset the client's socket; end the server's with a FIN, wait for the backend to close
    its end, then reset it.

    The backend must learn of the cut from this call, whatever else holds the socket and
    whatever the loopback does with one segment. A close resets the connection only when it
    drops the last reference to the socket (another thread's call in flight, a descriptor
    inherited across a fork defer it), and a reset is one segment, never retransmitted: lost
    or refused, the backend stays ``idle`` (or ``idle in transaction``, holding its locks)
    until a keepalive probe, minutes later. ``shutdown(SHUT_WR)`` acts on the socket itself
    and its FIN is part of the stream, retransmitted until acknowledged: the backend reads
    end-of-file and ends its session (rolling back). The reader, still draining (its frames
    dropped), returns at the backend's own FIN; only then (or after 5 s) the reset."""
    reply.swallow.set()
    _reset(client)
    with contextlib.suppress(OSError):
        server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        server.shutdown(socket.SHUT_WR)
    reply.join(5.0)
    _reset(server)


def _end_server(server: socket.socket) -> None:
    """Linger 0 (the close resets) and a FIN to the backend now (see ``_cut``)."""
    with contextlib.suppress(OSError):
        server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        server.shutdown(socket.SHUT_RDWR)


class _ServerPump(threading.Thread):
    """Server to client, frame by frame; once ``swallow`` is set, frames are dropped and
    ``ready`` is set at the first ReadyForQuery. Notes the backend's pid on ``conn``."""

    def __init__(self, conn: Connection, server: socket.socket, client: socket.socket) -> None:
        super().__init__(name="crash-proxy-reply", daemon=True)
        self.conn, self.server, self.client = conn, server, client
        self.swallow, self.ready = threading.Event(), threading.Event()

    def run(self) -> None:
        try:
            while True:
                kind, frame = _read_frame(self.server)
                if kind == b"K" and len(frame) >= 9:  # BackendKeyData: pid, then the key
                    (self.conn.backend_pid,) = struct.unpack("!i", frame[5:9])
                if self.swallow.is_set():
                    if kind == b"Z":
                        self.ready.set()
                    continue
                self.client.sendall(frame)
        except (_Closed, OSError):
            pass
        finally:
            self.ready.set()
            with contextlib.suppress(OSError):
                self.client.shutdown(socket.SHUT_WR)


def _text(kind: bytes, frame: bytes, limit: int | None = 400) -> str:
    """The query a frame carries; by default its first 400 characters, enough to reach a
    COMMIT message's history write ("change AS (") past the session restore before it."""
    body = frame[5:]
    if kind == b"P":  # statement name, then the query
        body = body.split(b"\0", 1)[1] if b"\0" in body else body
    return body.split(b"\0", 1)[0].decode("utf-8", "replace")[:limit]


# --------------------------------------------------------------------------- invariants

_EXPECT = re.compile(r"^--\s*expect:\s*(.+)$", re.MULTILINE)
_NO_TX = re.compile(r"^\s*--\s*patcher:no-transaction\b", re.MULTILINE)
_UP = re.compile(r"^(\d+)_.*\.up\.sql$")


@dataclass(frozen=True)
class Expected:
    version: int
    no_transaction: bool
    objects: tuple[tuple[str, str], ...]  # (kind, name)


def read_expectations(migrations_dir: Path) -> dict[int, Expected]:
    """What each up script of ``migrations_dir`` declares it creates."""
    found: dict[int, Expected] = {}
    for path in sorted(Path(migrations_dir).iterdir()):
        match = _UP.match(path.name)
        if not match:
            continue
        text = path.read_text()
        objects: list[tuple[str, str]] = []
        for line in _EXPECT.findall(text):
            for item in line.split(","):
                kind, _, name = item.strip().partition(" ")
                objects.append((kind, name.strip()))
        version = int(match[1])
        found[version] = Expected(version, bool(_NO_TX.search(text)), tuple(objects))
    return found


def _present(cur: psycopg.Cursor[Any], kind: str, name: str) -> bool | str:
    """Whether the object is in the catalog; for an index, ``"invalid"`` if it is INVALID."""
    if kind == "table":
        row = cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{name}",)).fetchone()
        return bool(row and row[0])
    if kind == "view":
        q = "SELECT count(*) FROM pg_views WHERE schemaname = 'public' AND viewname = %s"
        row = cur.execute(q, (name,)).fetchone()
        return bool(row and row[0])
    if kind == "index":
        row = cur.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s AND c.relnamespace = 'public'::regnamespace",
            (name,),
        ).fetchone()
        return False if row is None else (True if row[0] else "invalid")
    if kind == "column":
        table, column = name.split(".")
        row = cur.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = %s AND column_name = %s",
            (table, column),
        ).fetchone()
        return bool(row and row[0])
    if kind == "function":
        q = "SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace "
        row = cur.execute(q + "AND proname = %s", (name,)).fetchone()
        return bool(row and row[0])
    if kind == "marker":
        if not _present(cur, "table", "markers"):
            return False
        row = cur.execute(
            "SELECT count(*) FROM markers WHERE version = %s", (int(name),)
        ).fetchone()
        return bool(row and row[0])
    raise ValueError(f"unknown expectation kind {kind!r}")


def invariant_violations(
    dsn: str, migrations_dir: Path, *, table: str = "schema_migrations"
) -> list[str]:
    """Every way the database breaks SPEC section 7 item 6 (empty when it holds)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return violations_on(conn, migrations_dir, table=table)


def violations_on(
    conn: psycopg.Connection[Any], migrations_dir: Path, *, table: str = "schema_migrations"
) -> list[str]:
    """``invariant_violations`` read on ``conn`` (inside its transaction, if it has one)."""
    expected = read_expectations(migrations_dir)
    problems: list[str] = []
    cur = conn.cursor()
    # No advisory lock held by anyone in this database (the run's session is gone).
    locks = cur.execute(
        "SELECT l.pid, a.application_name FROM pg_locks l "
        "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())"
    ).fetchall()
    if locks:
        problems.append(f"advisory lock still held: {locks}")
    row = cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{table}",)).fetchone()
    history: dict[int, tuple[bool, str | None]] = {}
    if row and row[0]:
        history = {
            int(v): (bool(d), dd)
            for v, d, dd in cur.execute(
                f"SELECT version, dirty, dirty_direction FROM public.{table}"
            ).fetchall()
        }
    for version in sorted(set(history) - set(expected)):
        problems.append(f"history has version {version}, which has no up script")
    for version, exp in sorted(expected.items()):
        state = {(k, n): _present(cur, k, n) for k, n in exp.objects}
        if version in history and history[version][0]:
            if not exp.no_transaction:
                problems.append(
                    f"version {version} is dirty but is transactional: {history[version]}"
                )
            continue  # a no-transaction script that was running: anything goes
        if version in history:
            missing = [f"{k} {n}" for (k, n), s in state.items() if s is not True]
            if missing:
                problems.append(
                    f"version {version} is recorded applied but lacks (or has INVALID) "
                    f"{', '.join(missing)}"
                )
        else:
            leftovers = [f"{k} {n}" for (k, n), s in state.items() if s]
            if leftovers and not exp.no_transaction:
                problems.append(
                    f"version {version} is not recorded but is half-applied: "
                    f"{', '.join(leftovers)} present"
                )
            elif leftovers:
                problems.append(
                    f"no-transaction version {version} is neither recorded nor dirty but "
                    f"left {', '.join(leftovers)}"
                )
    problems += _audit_problems(cur, table, history)
    return problems


def _audit_problems(
    cur: psycopg.Cursor[Any], table: str, history: dict[int, tuple[bool, str | None]]
) -> list[str]:
    """The audit log agrees with the history: its last word on a version is not a lie."""
    row = cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{table}_log",)).fetchone()
    if not (row and row[0]):
        return [f"history table exists but {table}_log does not"] if history else []
    rows = cur.execute(
        f"SELECT id, version, direction, outcome FROM public.{table}_log "
        "WHERE outcome IN ('applied', 'reverted', 'failed') ORDER BY id"
    ).fetchall()
    last: dict[int, tuple[int, str, str]] = {}
    for ident, version, direction, outcome in rows:
        if version is not None:
            last[int(version)] = (int(ident), direction, outcome)
    problems: list[str] = []
    for version in sorted(set(history) | set(last)):
        dirty = history.get(version, (False, None))[0]
        if dirty:
            continue
        word = last.get(version)
        if version in history:
            if word is None:
                problems.append(f"version {version} is applied but the audit log never says so")
            elif word[1:] == ("up", "failed"):
                problems.append(
                    f"audit row {word[0]} says version {version} failed (up) but it committed"
                )
            elif word[1:] not in (("up", "applied"), ("down", "failed")):
                problems.append(f"version {version} is applied but its last audit row is {word}")
        elif word is not None and word[1:] == ("down", "failed"):
            problems.append(
                f"audit row {word[0]} says the rollback of {version} failed but it committed"
            )
        elif word is not None and word[1:] == ("up", "applied"):
            problems.append(f"audit row {word[0]} says {version} applied but history lacks it")
    return problems


def check_invariants(dsn: str, migrations_dir: Path, *, context: str = "") -> None:
    """Assert SPEC section 7 item 6 on the real catalog."""
    problems = invariant_violations(dsn, migrations_dir)
    assert not problems, f"{context}: " + "; ".join(problems) if context else "; ".join(problems)


def dirty_versions(dsn: str, table: str = "schema_migrations") -> list[int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{table}",)).fetchone()
        if not (row and row[0]):
            return []
        q = f"SELECT version FROM public.{table} WHERE dirty ORDER BY version"
        return [int(r[0]) for r in conn.execute(q).fetchall()]
