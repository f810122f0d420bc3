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
from typing import Any
from urllib.parse import unquote

import psycopg
import psycopg.conninfo

from patcher.core.errors import ConfigError, DatabaseUnavailable
from patcher.core.terms import terms

# A dead client must not keep its backend (and so the advisory lock) alive: the server probes
# the socket during long statements (PG 14+) and both ends send TCP keepalives, so a killed
# process frees the lock within ~1 s and a vanished network path within ~1 min.
_CLIENT_CHECK_INTERVAL = "1s"
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
        conn = psycopg.connect(conninfo, autocommit=True, prepare_threshold=None, **params)
        _watch_client(conn)
    except psycopg.Error as exc:
        reason = _scrub(_error_text(exc), conninfo)
        if token is not None:
            from patcher.db import iam

            reason = iam.scrub(reason, token)
    else:
        return conn
    # Raised out here, not in the except block: the driver's error is neither the cause nor the
    # context, because its ``pgconn`` holds every connection parameter, the password (or the
    # IAM token) included, and libpq's text may quote the URL; ``reason`` is scrubbed.
    tls = _tls_failure(reason)
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
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL: TLS failed, {meaning}: {reason}. No password "
            f"was sent. {advice}"
        ) from None
    raise DatabaseUnavailable(
        f"cannot connect to PostgreSQL: {reason}; {_connect_hint(reason)}"
        + (
            "; with IAM auth, that the user is granted rds_iam and the function's role "
            "has rds-db:connect on it"
            if iam_auth
            else ""
        )
    ) from None


_REFUSED_LOGIN = re.compile(
    r"password authentication failed|role .* does not exist|database .* does not exist|"
    r"no pg_hba\.conf entry|authentication failed|permission denied|no password supplied",
    re.IGNORECASE,
)


def _connect_hint(reason: str) -> str:
    """What to check for a connection that failed: connection things only, picked by what
    the server or libpq said (a refused setting, a refused login, or no server reached)."""
    where = terms().database_source
    if "invalid value for parameter" in reason:
        return (
            "the server refused a session setting: check PATCHER_LOCK_TIMEOUT / "
            "PATCHER_STATEMENT_TIMEOUT and the options in " + where
        )
    if _REFUSED_LOGIN.search(reason):
        return (
            "the server answered and refused the login: check the user, password and "
            f"database name in {where}"
        )
    if _BUSY.search(reason):
        return "the server answered but takes no connection now: wait and run again"
    if _UNREACHED.search(reason):
        return (
            f"no server answered: check the host and port in {where}, that PostgreSQL runs "
            "there, and the network path (firewall, security groups)"
        )
    return (
        f"check the host, port, user, password and database name in {where}, and the "
        "network path (firewall, security groups)"
    )


_BUSY = re.compile(r"too many clients|connection slots|starting up|shutting down|recovery mode")
_UNREACHED = re.compile(
    r"refused|could not translate host name|failed to resolve host|not known|timeout expired|"
    r"no route to host|unreachable|"
    r"could not connect|No such file or directory",
    re.IGNORECASE,
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
_TLS_FAILURES = (
    (re.compile(r"does not match host name|no subjectAltName", re.I),
     "the server's certificate is for another host name"),
    (re.compile(r"certificate verify failed|self.signed certificate|unable to get local issuer",
                re.I),
     "the server's certificate is not signed by a trusted CA"),
    (re.compile(r"root certificate file .* does not exist|could not read root certificate", re.I),
     "the CA file cannot be read"),
    (re.compile(r"server does not support SSL|SSL off|no encryption", re.I),
     "the server does not offer TLS but TLS is required"),
    (re.compile(r"\bSSL\b|\bTLS\b|certificate", re.I), "the TLS session could not be set up"),
)  # fmt: skip


def _tls_failure(text: str) -> tuple[str, bool] | None:
    """What a TLS failure means, and whether it is "the server has no TLS at all"."""
    for pattern, meaning in _TLS_FAILURES:
        if pattern.search(text):
            return meaning, meaning.startswith("the server does not offer TLS")
    return None


def _error_text(exc: BaseException) -> str:
    """The first line, plus the TLS reason libpq may put on a later line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    first = lines[0]
    extra = [line for line in lines[1:] if _tls_failure(line) and line not in first]
    return "; ".join([first, *extra[:2]])


def _watch_client(conn: psycopg.Connection[Any]) -> None:
    """Ask the backend to end itself when this client goes away mid-statement (PG 14+)."""
    if conn.info.server_version < 140000:
        return
    with suppress(psycopg.errors.UndefinedObject):  # a fork without it: keepalives only
        conn.execute(
            "SELECT set_config('client_connection_check_interval', %s, false)",
            (_CLIENT_CHECK_INTERVAL,),
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
        text += f"SET client_connection_check_interval = '{_CLIENT_CHECK_INTERVAL}';\n"
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
            f"the database role lacks a privilege the runner needs: {_first_line(exc)}. "
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
