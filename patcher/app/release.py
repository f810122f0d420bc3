"""The release gate's alias (SPEC 11): ``PATCHER_RELEASE_ALIAS``, checked, and read with
``lambda:GetAlias``. boto3 is imported only when the alias is read."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from patcher.core.errors import ConfigError

_ALIAS_ARN: Final = re.compile(
    r"^arn:aws[a-z-]*:lambda:([a-z0-9-]+):(\d{12}):function:([A-Za-z0-9_-]{1,64}):"
    r"([A-Za-z0-9_-]{1,128})$"
)


def release_alias(value: str | None) -> str | None:
    """``PATCHER_RELEASE_ALIAS`` checked: an alias ARN (a version or $LATEST is no alias)."""
    if value is None:
        return None
    match = _ALIAS_ARN.match(value)
    if match is None or match[4].isdigit():
        raise ConfigError(
            "PATCHER_RELEASE_ALIAS must be the application function's alias ARN, "
            "arn:aws:lambda:REGION:ACCOUNT:function:NAME:ALIAS (not a version, not $LATEST); "
            f"got {value[:200]!r}"
        )
    return value


def alias_reader(arn: str, client: Any = None) -> Callable[[], dict[str, Any]]:
    """A function that reads the alias's routing now: ``{"alias", "version", "weights"}``."""
    match = _ALIAS_ARN.match(arn)
    assert match is not None  # checked by release_alias when the configuration was read
    function_arn, name = arn.rsplit(":", 1)

    def read() -> dict[str, Any]:
        nonlocal client
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if client is None:
                import boto3

                client = boto3.client("lambda", region_name=match[1])
            alias = client.get_alias(FunctionName=function_arn, Name=name)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise ConfigError(_why(arn, code, str(exc)), alias=arn) from exc
        except BotoCoreError as exc:
            raise ConfigError(
                f"the release alias {arn} could not be read ({exc}); nothing was changed",
                alias=arn,
            ) from exc
        weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return {
            "alias": arn,
            "version": str(alias["FunctionVersion"]),
            "weights": {str(k): float(v) for k, v in weights.items()},
        }

    return read


def _why(arn: str, code: str, detail: str) -> str:
    if code in ("AccessDeniedException", "AccessDenied"):
        return (
            f"reading the release alias {arn} was denied: grant this function lambda:GetAlias "
            "on exactly that alias ARN (the template does); nothing was changed"
        )
    if code == "ResourceNotFoundException":
        return (
            f"the release alias {arn} does not exist: check PATCHER_RELEASE_ALIAS (function "
            "name, alias name, region and account); nothing was changed"
        )
    return f"the release alias {arn} could not be read ({detail}); nothing was changed"
