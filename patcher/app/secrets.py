"""Database credentials from Secrets Manager (RDS secret format), cached across warm starts."""

from __future__ import annotations

from typing import Any

from patcher.core.errors import ConfigError, DatabaseUnavailable
from patcher.db import make_conninfo

SECRET_MAX_AGE_SECONDS = 300
_REQUIRED = ("host", "username", "password")


def conninfo_from_secret(arn: str) -> str:
    """Read the secret through Powertools Parameters (cached) and build a libpq conninfo."""
    from aws_lambda_powertools.utilities import parameters

    not_json = False
    try:
        value: Any = parameters.get_secret(arn, transform="json", max_age=SECRET_MAX_AGE_SECONDS)
    except parameters.exceptions.TransformParameterError:
        not_json = True  # refused below: the decoder's error keeps the secret's text (``doc``)
    except Exception as exc:  # botocore errors of every kind: name the code, never the value
        code = _error_code(exc)
        raise DatabaseUnavailable(
            f"cannot read the database secret ({code}); check PATCHER_DB_SECRET_ARN and the "
            "function's secretsmanager:GetSecretValue permission"
        ) from exc
    if not_json:
        raise ConfigError(
            "the database secret is not JSON in the RDS format "
            "(host, port, username, password, dbname)"
        )
    if not isinstance(value, dict) or any(not value.get(k) for k in _REQUIRED):
        raise ConfigError(
            "the database secret lacks host, username or password (RDS secret format expected)"
        )
    return make_conninfo(
        host=str(value["host"]),
        port=str(value.get("port") or 5432),
        user=str(value["username"]),
        password=str(value["password"]),
        dbname=str(value.get("dbname") or "postgres"),
    )


def _error_code(exc: BaseException) -> str:
    """The AWS error code (Powertools wraps the botocore error), else the exception's name."""
    cause: BaseException | None = exc
    while cause is not None:
        response = getattr(cause, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get("Code"):
            return str(response["Error"]["Code"])
        cause = cause.__cause__ or cause.__context__
    return type(exc).__name__


def forget_cached_secrets() -> None:
    """Drop the cached secret so the next invocation reads it again (after a rotation)."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # type: ignore[no-untyped-call]
