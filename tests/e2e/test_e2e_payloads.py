"""Bad payloads: each one an ``invalid`` result naming the problem, never an exception."""

from __future__ import annotations

import json
from typing import Any

import pytest

from patcher.dev.devrun import LambdaContext
from tests.e2e.e2ekit import LambdaEnv
from tests.fixtures.engine import tables

BAD_PAYLOADS: list[tuple[str, Any, str]] = [
    ("null", None, "JSON object"),
    ("a string", "migrate", "JSON object"),
    ("a list", [{"action": "migrate"}], "JSON object"),
    ("a number", 42, "JSON object"),
    ("empty object", {}, "'action' is required"),
    ("unknown action", {"action": "drop_everything"}, "'action'"),
    ("action in capitals", {"action": "MIGRATE"}, "'action'"),
    ("action a number", {"action": 1}, "'action'"),
    ("dry_run a string", {"action": "migrate", "dry_run": "true"}, "'dry_run'"),
    ("dry_run 'false'", {"action": "migrate", "dry_run": "false"}, "'dry_run'"),
    ("dry_run an int", {"action": "migrate", "dry_run": 1}, "'dry_run'"),
    ("dry_run null", {"action": "migrate", "dry_run": None}, "'dry_run'"),
    ("verify a string", {"action": "migrate", "dry_run": True, "verify": "yes"}, "'verify'"),
    ("target a string", {"action": "migrate", "target": "5"}, "'target'"),
    ("target a float", {"action": "migrate", "target": 5.0}, "'target'"),
    ("target a bool", {"action": "migrate", "target": True}, "'target'"),
    ("target negative", {"action": "migrate", "target": -1}, "'target'"),
    ("target 19 digits", {"action": "migrate", "target": 10**18}, "'target'"),
    ("target huge", {"action": "migrate", "target": 10**100}, "'target'"),
    ("target a list", {"action": "migrate", "target": [3]}, "'target'"),
    ("steps zero", {"action": "rollback", "steps": 0}, "'steps'"),
    ("steps huge", {"action": "rollback", "steps": 10**30}, "'steps'"),
    ("steps and target", {"action": "rollback", "steps": 1, "target": 0}, "not both"),
    ("steps on migrate", {"action": "migrate", "steps": 1}, "only for rollback"),
    ("verify without dry_run", {"action": "migrate", "verify": True}, "verify needs dry_run"),
    ("target on status", {"action": "status", "target": 3}, "takes no target"),
    ("baseline without target", {"action": "baseline"}, "baseline needs a target"),
    ("source key", {"action": "migrate", "source": "s3://evil/x/"}, "unknown key 'source'"),
    (
        "database_url key",
        {"action": "migrate", "database_url": "postgresql://x:y@evil/db"},
        "unknown key 'database_url'",
    ),
    ("misspelt key", {"action": "migrate", "dryrun": True}, "unknown key 'dryrun'"),
    ("huge action", {"action": "m" * 100_000}, "'action'"),
]


def invoke_nowhere(payload: Any) -> dict[str, Any]:
    from patcher.aws.handler import lambda_handler

    result = lambda_handler(payload, LambdaContext())
    assert json.loads(json.dumps(result)) == result
    return result


@pytest.mark.parametrize(
    ("payload", "needle"), [p[1:] for p in BAD_PAYLOADS], ids=[p[0] for p in BAD_PAYLOADS]
)
def test_bad_payload_is_an_invalid_result(
    monkeypatch: pytest.MonkeyPatch, aws_env: str, payload: Any, needle: str
) -> None:
    """Nowhere to go: had the handler tried to run, it would fail on the source or database."""
    monkeypatch.setenv("PATCHER_SOURCE", "s3://no-such-bucket-here/migrations/")
    monkeypatch.setenv("PATCHER_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/nowhere")
    result = invoke_nowhere(payload)
    assert (result["ok"], result["status"]) == (False, "invalid")
    assert result["error"]["type"] == "InvalidRequest"
    assert needle in result["error"]["message"]
    assert result["migrations"] == [] and "pending" not in result  # never read: unknown
    assert result["current_version"] is None
    assert "before it read the history: InvalidRequest" in result["current_version_unknown_reason"]
    assert len(json.dumps(result)) < 3000, "a huge input is not echoed back"
    assert result["action"] in ("migrate", "rollback", "status", "baseline", "repair", "unknown")
    assert isinstance(result["dry_run"], bool)


def test_bad_payloads_touch_nothing(lambda_env: LambdaEnv) -> None:
    lambda_env.put("0001_t.up.sql", "CREATE TABLE t (id int);\n")
    for _, payload, _ in BAD_PAYLOADS:
        assert lambda_env.invoke(payload)["status"] == "invalid"
    assert tables(lambda_env.dsn) == set()
    assert len(BAD_PAYLOADS) >= 20
