"""What to tell someone whose connection failed: connection things only, picked by what the
server or libpq said (a refused setting, a refused login, a busy server, no server reached, a TLS
failure)."""

from __future__ import annotations

import re

from patcher.core.terms import terms

_REFUSED_LOGIN = re.compile(
    r"password authentication failed|role .* does not exist|database .* does not exist|"
    r"no pg_hba\.conf entry|authentication failed|permission denied|no password supplied",
    re.IGNORECASE,
)


def connect_hint(reason: str) -> str:
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


def tls_failure(text: str) -> tuple[str, bool] | None:
    """What a TLS failure means, and whether it is "the server has no TLS at all"."""
    for pattern, meaning in _TLS_FAILURES:
        if pattern.search(text):
            return meaning, meaning.startswith("the server does not offer TLS")
    return None
