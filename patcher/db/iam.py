"""RDS IAM authentication: a token made for each connection, used as its password.

``generate_db_auth_token`` signs a presigned ``connect`` URL with the function's own AWS
credentials (SigV4, locally: no network call); the token is valid 15 minutes for one host,
port and database user, and needs ``rds-db:connect`` on ``dbuser:<cluster resource id>/<user>``.
It is as good as a password for those 15 minutes, so it is only ever sent over verified TLS
(``patcher.app.config`` refuses IAM auth with an sslmode other than verify-full/verify-ca), passed
to libpq as the ``password`` parameter (never put into a conninfo string that could be echoed),
and never logged: ``scrub`` removes it from any text an error carries.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import psycopg.conninfo

from patcher.core.errors import ConfigError, DatabaseUnavailable

DEFAULT_PORT = 5432


@lru_cache(maxsize=4)
def _rds_client(region: str | None) -> Any:
    import boto3  # the CLI without IAM auth never pays for it

    # its own session: boto3's default one may hold credentials resolved long before
    return boto3.session.Session().client("rds", region_name=region)


def auth_token(conninfo: str, *, region: str | None = None) -> str:
    """A fresh token for the host, port and user ``conninfo`` names (its password is ignored)."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        raise ConfigError("the database URL does not parse; cannot make an IAM token") from None
    host, user = str(parts.get("host") or ""), str(parts.get("user") or "")
    if not host or "," in host or host.startswith("/"):
        raise ConfigError(
            "IAM auth needs one TCP host name in the database settings (the cluster's writer "
            f"endpoint), got {host or 'none'!r}"
        )
    if not user:
        raise ConfigError("IAM auth needs the database user (the secret's username)")
    try:
        port = int(str(parts.get("port") or DEFAULT_PORT))
    except ValueError:
        raise ConfigError(f"IAM auth: port {parts.get('port')!r} is not a number") from None
    try:
        client = _rds_client(region)
        token: str = client.generate_db_auth_token(
            DBHostname=host, Port=port, DBUsername=user, Region=region or client.meta.region_name
        )
    except Exception as exc:  # no credentials, no region: botocore's own classes
        raise DatabaseUnavailable(
            f"cannot make an RDS IAM auth token ({type(exc).__name__}): the function needs AWS "
            "credentials and a region (AWS_REGION); check its role"
        ) from None
    return token


def scrub(text: str, token: str | None) -> str:
    """``text`` without ``token`` (or the signature that makes it a credential)."""
    if not token:
        return text
    text = text.replace(token, "***")
    signature = token.rpartition("X-Amz-Signature=")[2]
    return text.replace(signature, "***") if len(signature) >= 16 else text
