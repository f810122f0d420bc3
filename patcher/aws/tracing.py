"""X-Ray tracing only when it is on.

Powertools' ``Tracer`` imports the X-Ray SDK as soon as it is made, disabled or not, and the
SDK's sampler imports botocore's session and client machinery with it: about half of the
dependencies' import time in a cold start (docs/benchmarks.md). So the handler makes a real
``Tracer`` only where Powertools would trace (inside Lambda, not under ``sam local``, and
``POWERTOOLS_TRACE_DISABLED`` not true: the template sets it from its ``Tracing``
parameter), and otherwise a stand-in with the same three calls that does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
TRUTHY = frozenset({"1", "true", "yes", "on", "y", "t"})


class Tracing(Protocol):
    """The part of Powertools' Tracer the handler uses."""

    def capture_lambda_handler(self, *, capture_response: bool) -> Decorator: ...

    def capture_method(self, *, capture_response: bool) -> Decorator: ...

    def put_annotation(self, key: str, value: str) -> None: ...


class NoTracing:
    """What the handler calls when tracing is off: nothing happens, nothing is imported."""

    @staticmethod
    def _unchanged(function: Callable[..., Any]) -> Callable[..., Any]:
        return function

    def capture_lambda_handler(self, *, capture_response: bool) -> Decorator:
        return self._unchanged

    def capture_method(self, *, capture_response: bool) -> Decorator:
        return self._unchanged

    def put_annotation(self, key: str, value: str) -> None:
        return None


def tracing_active(env: Mapping[str, str] | None = None) -> bool:
    """Powertools' own rule for a live tracer (aws_lambda_powertools.tracing.Tracer)."""
    env = os.environ if env is None else env
    if env.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in TRUTHY:
        return False
    if not env.get("LAMBDA_TASK_ROOT"):
        return False  # outside Lambda there is no X-Ray daemon to send to
    return not (env.get("AWS_SAM_LOCAL") or env.get("AWS_CHALICE_CLI_MODE"))


def make_tracer(service: str, env: Mapping[str, str] | None = None) -> Tracing:
    """A Powertools Tracer when tracing is active, else :class:`NoTracing`."""
    if not tracing_active(env):
        return NoTracing()
    from aws_lambda_powertools import Tracer

    tracer: Tracing = Tracer(service=service)
    return tracer
