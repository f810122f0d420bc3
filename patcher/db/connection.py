"""Opening the session and reporting its failures: connection options (keepalives, the client
check, TLS), password scrubbing, and the translation of driver errors into ``DatabaseUnavailable``.

The messages here say what failed and then what a user can check or change (hosts, settings,
the writer endpoint): they are what a user reads, so that remediation prose is part of them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import psycopg
import psycopg.conninfo

from patcher.core.errors import ConfigError, DatabaseUnavailable, SessionLost
from patcher.db.connect_hints import connect_hint, tls_failure

# A dead client must not keep its backend (and so the advisory lock) alive: the server probes
# the socket during long statements (PG 14+) and both ends send TCP keepalives, so a killed
# process frees the lock within ~1 s and a vanished network path within ~1 min.
CLIENT_CHECK_INTERVAL = "1s"
_SERVER_SETTINGS = (
    "-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3"
    " -c standard_conforming_strings=on"
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
    iam_auth: bool = False,
) -> psycopg.Connection[Any]:
    """Open an autocommit session named ``application_name``; fail within ``connect_timeout``.

    One ``attempt``, raised as ``unavailable`` says; ``patcher.db.reach`` makes several."""
    got = attempt(
        conninfo,
        application_name=application_name,
        lock_timeout=lock_timeout,
        statement_timeout=statement_timeout,
        connect_timeout=connect_timeout,
        sslmode=sslmode,
        sslrootcert=sslrootcert,
        iam_auth=iam_auth,
    )
    if isinstance(got, ConnectFailure):
        raise unavailable(got, sslmode=sslmode, sslrootcert=sslrootcert, iam_auth=iam_auth)
    with errors_translated():
        _watch_client(got)
    return got


@dataclass(frozen=True)
class ConnectFailure:
    """Why one connection attempt failed, scrubbed of any secret; ``transient``: worth trying
    again (refused, reset, timed out, the server starting or shutting down: a resume or a
    failover), not a refusal that waiting cannot change (credentials, TLS, the database name)."""

    reason: str
    transient: bool


def attempt(
    conninfo: str,
    *,
    application_name: str,
    lock_timeout: str,
    statement_timeout: str | None,
    connect_timeout: int,
    sslmode: str | None,
    sslrootcert: str | None,
    iam_auth: bool = False,
) -> psycopg.Connection[Any] | ConnectFailure:
    """One attempt at an autocommit session; its failure returned, never raised.

    ``iam_auth``: the password is a fresh RDS IAM auth token (``patcher.db.iam``), passed as
    a parameter and scrubbed from any error; the conninfo's own password, if any, is unused.

    The user's libpq ``options`` (the conninfo's, else ``PGOPTIONS``) are kept, the runner's
    after them: ``-c search_path=app`` holds for every migration, and where both set the same
    setting the runner's (lock_timeout, statement_timeout, keepalives) wins, as the later
    ``-c`` does on the server (SPEC 7 item 2). ``client_encoding`` is UTF8, whatever
    ``PGCLIENTENCODING`` says: the runner's text (file names, messages) is Unicode.
    ``standard_conforming_strings`` is on, whatever the database's or role's default: the
    statement list is split with it on (SPEC 7 item 5), so the server must read it the same way."""
    options = f"-c lock_timeout={lock_timeout} {_SERVER_SETTINGS}"
    if statement_timeout:
        options += f" -c statement_timeout={statement_timeout}"
    params: dict[str, Any] = {
        "application_name": application_name[:63],
        "connect_timeout": connect_timeout,
        "options": f"{_user_options(conninfo)} {options}".lstrip(),
        "client_encoding": "UTF8",
        **_CLIENT_KEEPALIVES,
    }
    params.update({k: v for k, v in (("sslmode", sslmode), ("sslrootcert", sslrootcert)) if v})
    token = None
    if iam_auth:
        from patcher.db import iam  # IAM authentication only: botocore's signer loads with it

        token = params["password"] = iam.auth_token(conninfo)
    try:
        return psycopg.connect(conninfo, autocommit=True, prepare_threshold=None, **params)
    except psycopg.Error as exc:
        # Only the scrubbed text leaves: the driver's error holds every connection parameter,
        # the password (or the IAM token) included, and libpq's text may quote the URL.
        return _failure(exc, conninfo, token)


def _failure(exc: psycopg.Error, conninfo: str, token: str | None) -> ConnectFailure:
    reason = _scrub(_error_text(exc), conninfo)
    if token is not None:
        from patcher.db import iam

        reason = iam.scrub(reason, token)
    return ConnectFailure(reason, _transient(exc, reason))


# Failures waiting cannot change: credentials (class 28), the database name, the CONNECT
# privilege, a bad conninfo, a host name that does not resolve (a typo), a bad certificate.
_PERMANENT_STATES = ("28", "3D000", "42501")
_PERMANENT_TEXT = re.compile(
    r"authentication failed|no pg_hba\.conf entry|(?:database|role) \"[^\"]*\" does not exist"
    r"|not permitted to log in|permission denied for database|could not translate host name"
    r"|invalid connection option|invalid (?:URI|integer|sslmode)"
    r"|missing \"=\"|does not match host name|certificate verify failed|root certificate file"
    r"|could not read root certificate|server does not support SSL|no encryption",
    re.I,
)


def _transient(exc: psycopg.Error, reason: str) -> bool:
    state = exc.sqlstate or ""
    if isinstance(exc, psycopg.ProgrammingError) or state.startswith(_PERMANENT_STATES):
        return False
    return not _PERMANENT_TEXT.search(reason)


def unavailable(
    failure: ConnectFailure,
    *,
    sslmode: str | None = None,
    sslrootcert: str | None = None,
    iam_auth: bool = False,
    tried: str = "",
) -> DatabaseUnavailable:
    """The ``DatabaseUnavailable`` a failed attempt ends in; ``tried`` says what was tried."""
    reason = failure.reason
    tls = tls_failure(reason)
    if tls:
        meaning, plain = tls
        advice = (
            "Check that the host and port are the database's (a server or proxy without TLS "
            "answered); do not lower PATCHER_DB_SSLMODE to get past this"
            if plain
            else f"Check that PATCHER_DB_SSLROOTCERT ({sslrootcert or 'libpq default'}) is "
            "the CA bundle of the server (Aurora/RDS: the RDS bundle shipped in the "
            "package) and that the host is the endpoint name the server's certificate "
            f"carries (sslmode {sslmode or 'libpq default'})"
        )
        return DatabaseUnavailable(
            f"cannot connect to PostgreSQL: TLS failed, {meaning}: {reason}. No password "
            f"was sent. {advice}"
        )
    return DatabaseUnavailable(
        f"cannot connect to PostgreSQL: {reason}{tried}; {connect_hint(reason)}"
        + (
            "; with IAM auth, that the user is granted rds_iam and the function's role "
            "has rds-db:connect on it"
            if iam_auth
            else ""
        )
    )


def _user_options(conninfo: str) -> str:
    """The ``options`` the user gave libpq: the conninfo's, else ``PGOPTIONS`` (libpq's own
    precedence; a service file's are not read). A malformed conninfo gives none here: the
    connect that follows names the fault, scrubbed of the password."""
    given: object = None
    with suppress(psycopg.Error):
        given = psycopg.conninfo.conninfo_to_dict(conninfo).get("options")
    if given is None:
        given = os.environ.get("PGOPTIONS")
    return str(given or "").strip()


# libpq's words for a failed or refused TLS session, and what each means for the user.
def _error_text(exc: BaseException) -> str:
    """The first line, plus the TLS reason libpq may put on a later line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    first = lines[0]
    extra = [line for line in lines[1:] if tls_failure(line) and line not in first]
    return "; ".join([first, *extra[:2]])


def _watch_client(conn: psycopg.Connection[Any]) -> None:
    """Ask the backend to end itself when this client goes away mid-statement (PG 14+)."""
    if conn.info.server_version < 140000:
        return
    with suppress(psycopg.errors.UndefinedObject):  # a fork without it: keepalives only
        conn.execute(
            "SELECT set_config('client_connection_check_interval', %s, false)",
            (CLIENT_CHECK_INTERVAL,),
        )


# What a migration leaves in the session besides settings (SPEC 7 item 2): its cursors (WITH
# HOLD ones outlive COMMIT), prepared statements (the runner prepares none: prepare_threshold
# is None), LISTENs and temporary tables (a temp ``items`` would take the next migration's
# unqualified ``INSERT INTO items``). Each is allowed inside a transaction block, unlike
# DISCARD ALL, which would also drop the advisory lock. Cursors close first: an open one would
# keep its temp table from being dropped.
_LEFTOVERS = "CLOSE ALL;\nDEALLOCATE ALL;\nUNLISTEN *;\nDISCARD TEMP;\n"


def restore_sql(conn: psycopg.Connection[Any]) -> str:
    """Statements that bring the session back to what it connected with (SPEC 7 item 2).

    ``_LEFTOVERS`` end what the migration made; ``RESET ALL`` returns every setting to the
    session default (what the connection's ``options`` and the role/database settings gave:
    lock_timeout, statement_timeout, search_path, application_name, client_encoding UTF8) but
    not the role: ``RESET SESSION AUTHORIZATION`` (allowed to any user: it returns to the
    authenticated one) undoes ``SET ROLE`` and ``SET SESSION AUTHORIZATION``. The client
    check of ``_watch_client`` is set again after them. The text is ASCII: it can be sent in
    whatever client_encoding a migration left."""
    text = f"{_LEFTOVERS}RESET SESSION AUTHORIZATION;\nRESET ALL;\n"
    if conn.info.server_version >= 140000:  # no query: what _watch_client set, as it set it
        text += f"SET client_connection_check_interval = '{CLIENT_CHECK_INTERVAL}';\n"
    return text


def encoding_restored(conn: psycopg.Connection[Any], restore: str) -> None:
    """Before text is composed for a session whose migration changed ``client_encoding``: the
    server reads a message in the encoding it had when the message arrived, so the restore
    travels alone first (one round trip, only then; psycopg follows the server's
    ParameterStatus). Any other session's restore rides with its bookkeeping."""
    if conn.info.encoding != "utf-8":
        conn.execute(restore, prepare=False)


def cancel(conn: psycopg.Connection[Any]) -> None:
    """Ask the server to cancel what the session runs; from any thread; never raises."""
    with suppress(Exception):
        conn.cancel_safe(timeout=5)


@contextmanager
def errors_translated() -> Iterator[None]:
    """Turn a driver error outside a migration script (lost connection, server restart,
    failed bookkeeping) into DatabaseUnavailable, so a run always ends with a result."""
    try:
        yield
    except psycopg.errors.InsufficientPrivilege as exc:
        raise ConfigError(
            f"the database role lacks a privilege the runner needs: {first_line(exc)}. "
            "Nothing more was run. Grant what docs/database.md lists (CONNECT, and "
            "USAGE and CREATE on the history's schema, or the two tables created beforehand "
            "and granted), then run again",
            sqlstate=exc.sqlstate,
        ) from exc
    except UnicodeError as exc:  # text the session's client_encoding cannot carry
        raise DatabaseUnavailable(
            f"text could not be converted for the database session ({exc}). A migration "
            "that was running was rolled back, or, if it was a no-transaction one, stays "
            "marked dirty (see status). Remove any SET client_encoding from the scripts "
            "(the runner's session is UTF8) and run again",
            sqlstate="22P05",
        ) from exc
    except psycopg.Error as exc:
        lost = exc.sqlstate is None or exc.sqlstate.startswith(("08", "57P"))
        raise (SessionLost if lost else DatabaseUnavailable)(
            f"the database session failed during the run: {first_line(exc)}. Everything "
            "the result lists as applied or reverted is recorded; a migration that was "
            "running was rolled back, or, if it was a no-transaction one, stays marked "
            "dirty (see status). The lock went with the session: run again once the "
            "database is back",
            sqlstate=exc.sqlstate,
        ) from exc


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


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
