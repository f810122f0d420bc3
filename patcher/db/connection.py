"""Opening the session and reporting its failures: connection options (keepalives, the client
check, TLS), password scrubbing, and the translation of driver errors into ``DatabaseUnavailable``.

The messages here say what failed and then what a user can check or change (hosts, settings,
the writer endpoint): they are what a user reads, so that remediation prose is part of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import unquote

import psycopg
import psycopg.conninfo

from patcher.core.errors import DatabaseUnavailable

# A dead client must not keep its backend (and so the advisory lock) alive: the server probes
# the socket during long statements (PG 14+) and both ends send TCP keepalives, so a killed
# process frees the lock within ~1 s and a vanished network path within ~1 min.
_CLIENT_CHECK_INTERVAL = "1s"
_SERVER_KEEPALIVES = (
    "-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3"
)
_CLIENT_KEEPALIVES = {
    "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3,
}  # fmt: skip


def connect(
    conninfo: str,
    *,
    application_name: str,
    lock_timeout: str,
    statement_timeout: str | None,
    connect_timeout: int,
    sslmode: str | None,
    sslrootcert: str | None,
) -> psycopg.Connection[Any]:
    """Open an autocommit session named ``application_name``; fail within ``connect_timeout``."""
    options = f"-c lock_timeout={lock_timeout} {_SERVER_KEEPALIVES}"
    if statement_timeout:
        options += f" -c statement_timeout={statement_timeout}"
    params: dict[str, Any] = {
        "application_name": application_name[:63],
        "connect_timeout": connect_timeout,
        "options": options,
        **_CLIENT_KEEPALIVES,
    }
    params.update({k: v for k, v in (("sslmode", sslmode), ("sslrootcert", sslrootcert)) if v})
    try:
        conn = psycopg.connect(conninfo, autocommit=True, **params)
        _watch_client(conn)
    except psycopg.Error as exc:
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL: {_scrub(_first_line(exc), conninfo)}; check the "
            "host, port, credentials and network path (security groups), and that "
            "PATCHER_LOCK_TIMEOUT / PATCHER_STATEMENT_TIMEOUT are valid durations"
        ) from exc
    return conn


def _watch_client(conn: psycopg.Connection[Any]) -> None:
    """Ask the backend to end itself when this client goes away mid-statement (PG 14+)."""
    if conn.info.server_version < 140000:
        return
    with suppress(psycopg.errors.UndefinedObject):  # a fork without it: keepalives only
        conn.execute(
            "SELECT set_config('client_connection_check_interval', %s, false)",
            (_CLIENT_CHECK_INTERVAL,),
        )


@contextmanager
def errors_translated() -> Iterator[None]:
    """Turn a driver error outside a migration script (lost connection, server restart,
    failed bookkeeping) into DatabaseUnavailable, so a run always ends with a result."""
    try:
        yield
    except psycopg.Error as exc:
        raise DatabaseUnavailable(
            f"the database session failed during the run: {_first_line(exc)}. Everything "
            "the result lists as applied or reverted is recorded; a migration that was "
            "running was rolled back, or, if it was a no-transaction one, stays marked "
            "dirty (see status). The lock went with the session: run again once the "
            "database is back",
            sqlstate=exc.sqlstate,
        ) from exc


def check_writable(conn: psycopg.Connection[Any]) -> None:
    """Refuse a hot standby or a read-only default before anything is written."""
    row = conn.execute(
        "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'"
    ).fetchone()
    standby, read_only = (bool(row[0]), bool(row[1])) if row else (False, False)
    if standby or read_only:
        why = (
            "a hot standby (read replica) in recovery"
            if standby
            else "default_transaction_read_only is on for this database or role"
        )
        raise DatabaseUnavailable(
            f"the database is read-only: {why}. Nothing was changed. Point "
            "PATCHER_DB_SECRET_ARN / PATCHER_DATABASE_URL at the cluster's writer endpoint"
        )


def make_conninfo(**parts: str) -> str:
    """A libpq conninfo string from its parts, quoted correctly."""
    return psycopg.conninfo.make_conninfo(**parts)


_URI_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^@/?#]*)@")
_KV_PASSWORD = re.compile(r"""password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s'"&]+)""")


def _scrub(text: str, conninfo: str) -> str:
    """``text`` without the password ``conninfo`` carries, however libpq echoed it.

    libpq quotes a malformed URI whole (or the token it choked on) in its error message."""
    secrets: set[str] = set()
    match = _URI_USERINFO.match(conninfo)
    if match and ":" in match[1]:
        raw = match[1].split(":", 1)[1]
        secrets |= {raw, unquote(raw)}
    for found in _KV_PASSWORD.finditer(conninfo):
        secrets |= {found[1].strip("'"), unquote(found[1])}
    with suppress(psycopg.Error):
        secrets.add(str(psycopg.conninfo.conninfo_to_dict(conninfo).get("password") or ""))
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
