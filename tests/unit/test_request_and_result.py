"""Payload validation (strict types, unknown keys) and the result's size limit."""

from __future__ import annotations

import json

import pytest

from patcher.app.result import build_result
from patcher.aws.request import parse_payload
from patcher.core.errors import InvalidRequest
from patcher.core.models import Migration, SourceObject
from patcher.engine.outcome import Outcome, ResultEntry


def test_a_good_payload_becomes_a_request() -> None:
    request = parse_payload({"action": "rollback", "dry_run": True, "steps": 2})
    assert (request.action, request.dry_run, request.steps, request.target) == (
        "rollback", True, 2, None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("event", "needle"),
    [
        ({"action": "migrate", "dry_run": "true"}, "'dry_run'"),
        ({"action": "migrate", "target": "5"}, "'target'"),
        ({"action": "migrate", "target": 5.0}, "'target'"),
        ({"action": "migrate", "target": True}, "'target'"),
        ({"action": "migrate", "target": 10**19}, "'target'"),
        ({"action": "rollback", "steps": 0}, "'steps'"),
        ({"action": "migrate", "source": "s3://evil/"}, "unknown key 'source'"),
        ({"action": "migrate", "database_url": "postgresql://x"}, "unknown key 'database_url'"),
        ({"dry_run": True}, "'action' is required"),
        ({"action": "MIGRATE"}, "'action'"),
        ({"action": ["migrate"]}, "'action'"),
        ({"action": "migrate", "dry_run": None}, "'dry_run'"),
        ([], "must be a JSON object"),
        ("migrate", "must be a JSON object"),
        (None, "must be a JSON object"),
    ],
)
def test_bad_payloads_are_refused_with_the_reason(event: object, needle: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_payload(event)
    assert needle in exc.value.message


def test_long_sql_previews_are_truncated_with_a_marker() -> None:
    obj = SourceObject(name="1_big.up.sql", key="1_big.up.sql")
    entries = [
        ResultEntry(version=v, description="big", direction="up", state="planned",
                    checksum=None, sql="INSERT INTO t VALUES ('é');\n" * 100_000)
        for v in range(1, 5)
    ]  # fmt: skip
    outcome = Outcome(status="planned", entries=entries, pending=[Migration(1, "big", obj)])
    result = build_result(
        action="migrate", dry_run=True, outcome=outcome, request_id="r", duration_ms=1,
        limit=1_000_000,
    )  # fmt: skip
    size = len(json.dumps(result, ensure_ascii=False).encode())
    assert size <= 1_000_000
    assert all(e["sql_truncated"] for e in result["migrations"])
    assert "[truncated by StackFlowPatcher" in result["migrations"][0]["sql"]


def test_small_results_are_left_alone() -> None:
    entries = [
        ResultEntry(version=1, description="x", direction="up", state="planned", checksum=None,
                    sql="SELECT 1;")
    ]  # fmt: skip
    result = build_result(
        action="migrate", dry_run=True, outcome=Outcome(status="planned", entries=entries),
        request_id="r", duration_ms=1,
    )  # fmt: skip
    assert result["migrations"][0]["sql"] == "SELECT 1;" and result["ok"] is True
