"""``patcher invoke`` against the real handler: a Lambda client that runs it in this process."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from patcher.cli.invoke import invoke_command
from patcher.cli.main import build_parser
from patcher.dev.devrun import LambdaContext
from tests.e2e.e2ekit import LambdaEnv
from tests.fixtures.engine import query


class InProcessLambda:
    """``boto3.client("lambda")`` as far as patcher invoke uses it; each call a new context."""

    def __init__(self, context: Callable[[], LambdaContext] = LambdaContext) -> None:
        self.context = context
        self.payloads: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        from patcher.aws.handler import lambda_handler

        assert kwargs["InvocationType"] == "RequestResponse"
        payload = json.loads(kwargs["Payload"])
        self.payloads.append(payload)
        context = self.context()
        custom = json.loads(base64.b64decode(kwargs["ClientContext"]))["custom"]
        context.client_context = SimpleNamespace(custom=custom)
        result = lambda_handler(payload, context)
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result).encode())}


class CrashingLambda:
    def invoke(self, **_: Any) -> dict[str, Any]:
        body = {"errorMessage": "2026-01-01 Task timed out after 900.00 seconds"}
        return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(
            json.dumps(body).encode())}  # fmt: skip


def _invoke(client: Any, *argv: str) -> int:
    return invoke_command(build_parser().parse_args(["invoke", *argv]), client=client)


def _tables(env: LambdaEnv, count: int) -> None:
    for v in range(1, count + 1):
        env.put(f"{v:04d}_t{v}.up.sql", f"CREATE TABLE t{v} (id int);\nSELECT pg_sleep(0.2);\n")


def test_invoke_prints_the_result_and_exits_zero_when_ok(
    lambda_env: LambdaEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    _tables(lambda_env, 2)
    client = InProcessLambda()
    assert _invoke(client, "migrate", "--dry-run") == 0
    assert "migrate (dry run): planned" in capsys.readouterr().out
    assert _invoke(client, "migrate", "--json") == 0
    out = capsys.readouterr().out
    printed = json.loads(out[out.index('{\n  "ok"') :])  # after the in-process handler's logs
    assert (printed["ok"], printed["status"], printed["current_version"]) == (True, "applied", 2)
    assert client.payloads == [{"action": "migrate", "dry_run": True}, {"action": "migrate"}]
    who = query(lambda_env.dsn, "SELECT DISTINCT invoked_by FROM schema_migrations_log")
    assert len(who) == 1 and who[0][0].startswith("patcher invoke by ")
    assert who[0][0].endswith(f"via {LambdaContext.invoked_function_arn}")


def test_invoke_exits_non_zero_on_ok_false(
    lambda_env: LambdaEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    lambda_env.put("0001_a.up.sql", "CREATE TABLE a (id int);\n")
    assert _invoke(InProcessLambda(), "baseline") == 1  # no target: invalid
    captured = capsys.readouterr()
    assert "baseline needs a target" in captured.out
    assert "reported a failure" in captured.err


def test_invoke_exits_non_zero_on_a_function_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _invoke(CrashingLambda(), "migrate") == 1
    captured = capsys.readouterr()
    assert (
        json.loads(captured.out[captured.out.index('{\n  "ok"') :])["function_error"] == "Unhandled"
    )
    assert "Task timed out" in captured.out


def _short_then_long() -> Callable[[], LambdaContext]:
    contexts = iter([LambdaContext(31_500)])  # 1.5 s usable: a few of the 0.2 s migrations
    return lambda: next(contexts, None) or LambdaContext()


def test_until_done_reinvokes_while_partial(
    lambda_env: LambdaEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    _tables(lambda_env, 12)
    client = InProcessLambda(_short_then_long())
    started = time.monotonic()
    assert _invoke(client, "migrate", "--until-done") == 0
    assert time.monotonic() - started < 10
    assert len(client.payloads) == 2
    out = capsys.readouterr().out
    assert "migrate: partial" in out and "migrate: applied - current version 12" in out


def test_partial_without_until_done_is_ok_but_says_so(
    lambda_env: LambdaEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    _tables(lambda_env, 12)
    assert _invoke(InProcessLambda(lambda: LambdaContext(31_500)), "migrate") == 0
    assert "invoke again (or use --until-done)" in capsys.readouterr().err
    give_up = InProcessLambda(lambda: LambdaContext(30_500))
    assert _invoke(give_up, "migrate", "--until-done", "--max-invocations", "2") == 1
    assert len(give_up.payloads) == 2
