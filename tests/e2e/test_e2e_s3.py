"""The handler's S3 side: 2,500 objects, what a plan downloads, retries, and the bucket owner."""

from __future__ import annotations

import collections
from typing import Any

import pytest

from tests.e2e.e2ekit import HandlerS3, LambdaEnv, event
from tests.fixtures.engine import history, tables
from tests.fixtures.s3 import MOTO_ACCOUNT, count_requests, fail_requests, sent_requests

MANY = 2_500


def _name(version: int) -> str:
    return f"{version:05d}_step_{version}.up.sql"


@pytest.mark.slow
def test_2500_applied_objects_then_a_plan_reads_only_the_pending_files(
    lambda_env: LambdaEnv, handler_s3: HandlerS3
) -> None:
    """2,500 objects (three list pages) marked applied by a baseline, which reads each once and
    records its checksum and ETag; then 3 new files: a plan downloads those 3 and nothing else."""
    lambda_env.put_many({_name(v): f"SELECT {v};\n" for v in range(1, MANY + 1)})
    first = lambda_env.invoke({"action": "baseline", "target": MANY})
    assert (first["ok"], first["status"], first["current_version"]) == (True, "applied", MANY)
    assert len(first["migrations"]) == MANY
    assert handler_s3.calls == {"ListObjectsV2": 3, "GetObject": MANY}

    lambda_env.put_many({_name(v): f"SELECT {v};\n" for v in range(MANY + 1, MANY + 4)})
    pending = {f"migrations/{_name(v)}" for v in range(MANY + 1, MANY + 4)}
    for payload, status in ((event("migrate_dry_run"), "planned"), (event("migrate"), "applied")):
        handler_s3.calls.clear()
        handler_s3.keys.clear()
        result = lambda_env.invoke(payload)
        assert result["status"] == status
        assert [e["version"] for e in result["migrations"]] == [MANY + 1, MANY + 2, MANY + 3]
        assert handler_s3.calls == {"ListObjectsV2": 3, "GetObject": 3}
        assert {key for op, key in handler_s3.keys if op == "GetObject"} == pending
    handler_s3.calls.clear()
    status = lambda_env.invoke(event("status"))
    assert (status["status"], status["current_version"]) == ("up_to_date", MANY + 3)
    # status shows each applied file's real transactional mode (issue 28), so it reads each
    # applied up script once (in parallel); the history does not record the mode (docs:
    # development, Open). A migrate that has nothing to do still downloads nothing.
    assert handler_s3.calls == {"ListObjectsV2": 3, "GetObject": MANY + 3}
    assert {e["transactional"] for e in status["migrations"]} == {True}
    handler_s3.calls.clear()
    assert lambda_env.invoke(event("migrate"))["status"] == "up_to_date"
    assert handler_s3.calls == {"ListObjectsV2": 3}, "an up-to-date migrate downloads nothing"


def test_transient_500s_and_throttling_are_retried(
    lambda_env: LambdaEnv, handler_s3: HandlerS3
) -> None:
    lambda_env.put("0001_a.up.sql", "CREATE TABLE a (id int);\n")
    lambda_env.put("0002_b.up.sql", "CREATE TABLE b (id int);\n")
    failures: list[collections.Counter[str]] = []
    attempts: list[collections.Counter[str]] = []

    def flaky(client: Any) -> None:
        attempts.append(count_requests(client, attempts=True))
        failures.append(fail_requests(client, "ListObjectsV2", status=500, times=2))
        failures.append(fail_requests(client, "GetObject", status=503, code="SlowDown", times=3))

    handler_s3.hooks.append(flaky)
    result = lambda_env.invoke(event("migrate"))
    assert (result["ok"], result["status"], result["current_version"]) == (True, "applied", 2)
    assert [f["failed"] for f in failures] == [2, 3]
    assert attempts[0]["ListObjectsV2"] == 3 and attempts[0]["GetObject"] == 5


@pytest.mark.parametrize("operation", ["ListObjectsV2", "GetObject"])
def test_s3_failing_for_good_is_source_unavailable_before_anything_ran(
    lambda_env: LambdaEnv, handler_s3: HandlerS3, operation: str
) -> None:
    lambda_env.put("0001_a.up.sql", "CREATE TABLE a (id int);\n")
    attempts: list[collections.Counter[str]] = []

    def broken(client: Any) -> None:
        attempts.append(count_requests(client, attempts=True))
        fail_requests(client, operation, status=500)

    handler_s3.hooks.append(broken)
    result = lambda_env.invoke(event("migrate"))
    assert (result["ok"], result["status"]) == (False, "failed")
    assert result["error"]["type"] == "SourceUnavailable"
    assert "InternalError" in result["error"]["message"]
    assert "invoke again" in result["error"]["message"]
    assert attempts[0][operation] == 6, "standard retry mode: 1 attempt + 5 retries"
    assert tables(lambda_env.dsn) == set(), "nothing ran, not even the history table"


def test_expected_bucket_owner_goes_on_every_request(
    lambda_env: LambdaEnv, handler_s3: HandlerS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATCHER_EXPECTED_BUCKET_OWNER", MOTO_ACCOUNT)
    lambda_env.put("0001_a.up.sql", "CREATE TABLE a (id int);\n")
    lambda_env.put("0002_b.up.sql", "CREATE TABLE b (id int);\n")
    sent: list[Any] = []
    handler_s3.hooks.append(lambda client: sent.append(sent_requests(client)))
    assert lambda_env.invoke(event("migrate"))["status"] == "applied"
    requests = sent[0]
    assert {r.operation for r in requests} == {"ListObjectsV2", "GetObject"}
    assert all(r.headers.get("x-amz-expected-bucket-owner") == MOTO_ACCOUNT for r in requests)
    assert history(lambda_env.dsn) == [(1, False), (2, False)]
