"""What the adapters read from their surroundings besides the run's configuration: who runs a
local command, the local migrations directory for ``patcher new``, Powertools' names."""

from __future__ import annotations

import os
from collections.abc import Mapping

from patcher.app.config import DEFAULT_SOURCE
from patcher.core.errors import ConfigError


def invoked_by_default() -> str:
    """Who is running a local command: user@host, for the audit log."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def load_source_dir(env: Mapping[str, str] | None = None) -> str:
    """The local migrations directory for ``patcher new`` (PATCHER_SOURCE if it is local)."""
    env = os.environ if env is None else env
    value = env.get("PATCHER_SOURCE", "").strip()
    if value.startswith("s3://"):
        raise ConfigError("patcher new writes to a local directory; pass --dir")
    return value.removeprefix("file://") or DEFAULT_SOURCE


def powertools_names(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """Service name and metrics namespace: the Powertools variables when set, else ours."""
    env = os.environ if env is None else env
    service = env.get("POWERTOOLS_SERVICE_NAME", "").strip() or "stackflowpatcher"
    namespace = env.get("POWERTOOLS_METRICS_NAMESPACE", "").strip() or "StackFlowPatcher"
    return service, namespace
