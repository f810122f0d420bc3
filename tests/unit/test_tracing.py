"""X-Ray only when tracing is on: the handler's tracer follows Powertools' own rule."""

from __future__ import annotations

import subprocess
import sys

import pytest

from patcher.aws.tracing import NoTracing, make_tracer, tracing_active

LAMBDA = {"LAMBDA_TASK_ROOT": "/var/task"}


@pytest.mark.parametrize(
    ("env", "active"),
    [
        ({}, False),  # outside Lambda: no daemon to send to
        (LAMBDA, True),
        ({**LAMBDA, "POWERTOOLS_TRACE_DISABLED": "true"}, False),  # the template's PassThrough
        ({**LAMBDA, "POWERTOOLS_TRACE_DISABLED": "1"}, False),
        ({**LAMBDA, "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({**LAMBDA, "AWS_SAM_LOCAL": "true"}, False),
    ],
)
def test_tracing_is_active_where_powertools_would_trace(env: dict[str, str], active: bool) -> None:
    assert tracing_active(env) is active


def test_no_tracing_leaves_the_handler_as_it_is() -> None:
    tracer = make_tracer("svc", {})
    assert isinstance(tracer, NoTracing)

    def handler(event: int) -> int:
        return event + 1

    assert tracer.capture_lambda_handler(capture_response=False)(handler) is handler
    assert tracer.capture_method(capture_response=False)(handler) is handler
    assert tracer.put_annotation("action", "migrate") is None


IMPORTED = (
    "import sys, patcher.handler; "
    "print(any(m.split('.')[0] == 'aws_xray_sdk' for m in sys.modules))"
)


@pytest.mark.parametrize(("disabled", "imported"), [("true", "False"), ("false", "True")])
def test_the_handler_imports_xray_only_when_tracing(disabled: str, imported: str) -> None:
    env = {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": disabled}
    proc = subprocess.run(
        [sys.executable, "-c", IMPORTED],
        env={**env, "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert proc.stdout.strip() == imported
