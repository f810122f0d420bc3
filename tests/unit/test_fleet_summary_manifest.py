"""patcher.aws.fleet_summary finds its wave's results through the manifest (issue 26 item 15):
ResultWriter writes under one literal prefix for every execution and wave, to which the map run
id is added; the summary reads only the manifest its map run wrote (named by ResultWriterDetails,
or, when the map failed, found from the execution's newest map run), so runs never mix."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from patcher.aws.fleet_summary import ResultsMissing, handler, summarize_wave

REGION = "us-east-1"
PREFIX = "runs/waves"
MACHINE = "arn:aws:states:us-east-1:123456789012:mapRun:patcher-orchestrator/Wave"


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto import mock_aws

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with mock_aws():
        name = f"res-{uuid.uuid4().hex[:8]}"
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=name)
        yield name


def write_run(bucket: str, databases: dict[str, str]) -> dict[str, str]:
    """One map run's files as ResultWriter writes them ({database: status}); its map run ARN
    and its ResultWriterDetails."""
    s3 = boto3.client("s3", region_name=REGION)
    arn = f"{MACHINE}:{uuid.uuid4()}"
    base = f"{PREFIX}/{arn.rsplit(':', 1)[-1]}/"
    files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for section in ("SUCCEEDED", "FAILED"):
        records = []
        for db, status in databases.items():
            if (status == "failed") != (section == "FAILED"):
                continue
            record = {"Status": section, "Input": json.dumps({"database": db})}
            if section == "SUCCEEDED":
                record["Output"] = json.dumps({"database": db, "ok": True, "status": status})
            else:
                record.update(Error="MigrationFailed", Cause="version 1 up failed")
            records.append(record)
        if records:
            body = json.dumps(records).encode()
            s3.put_object(Bucket=bucket, Key=f"{base}{section}_0.json", Body=body)
            files[section].append({"Key": f"{base}{section}_0.json", "Size": len(body)})
    manifest = {"DestinationBucket": bucket, "MapRunArn": arn, "ResultFiles": files}
    s3.put_object(Bucket=bucket, Key=base + "manifest.json", Body=json.dumps(manifest).encode())
    return {"arn": arn, "Bucket": bucket, "Key": base + "manifest.json"}


def event(bucket: str, written: dict[str, str] | None, execution: str = "exec-1") -> dict[str, Any]:
    details = {"Bucket": written["Bucket"], "Key": written["Key"]} if written else None
    return {"bucket": bucket, "prefix": PREFIX, "written": details,
            "execution": f"arn:aws:states:us-east-1:123456789012:execution:m:{execution}",
            "phase": "rest", "databases": 2, "canary": None, "dry_run": False,
            "tolerated_failure_percentage": 0}  # fmt: skip


def counted(got: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    summary = got["summary"]
    return sorted(f["database"] for f in summary["failures"]), [summary["ran"], summary["failed"]]


def test_the_manifest_named_by_result_writer_details_is_the_one_read(bucket: str) -> None:
    """Two executions' waves under the one prefix: each summary counts its own run only (the
    older run too, though a newer manifest sits beside it)."""
    first = write_run(bucket, {"a": "applied", "b": "failed"})
    second = write_run(bucket, {"a": "up_to_date", "b": "applied", "c": "applied"})
    got = handler(event(bucket, first), None)
    assert counted(got) == (["b"], [2, 1])
    assert got["summary"]["results"] == f"s3://{bucket}/{first['Key']}"
    again = handler(event(bucket, second, "exec-2"), None)
    assert counted(again) == ([], [3, 0]) and again["summary"]["counts"]["up_to_date"] == 1


def test_a_failed_map_is_found_from_the_executions_newest_map_run(bucket: str) -> None:
    """No ResultWriterDetails (the map failed past its tolerated failures): the execution's
    newest map run (its canary wave came first); another execution's newer run is not read."""
    canary = write_run(bucket, {"a": "applied"})
    rest = write_run(bucket, {"a": "applied", "b": "failed"})
    write_run(bucket, {"x": "failed", "y": "failed", "z": "failed"})  # another execution's
    runs = [{"mapRunArn": canary["arn"], "startDate": 1},
            {"mapRunArn": rest["arn"], "startDate": 2}]  # fmt: skip
    asked: list[str] = []

    def map_runs(execution: str) -> list[dict[str, Any]]:
        asked.append(execution)
        return runs

    s3 = boto3.client("s3", region_name=REGION)
    got = summarize_wave(event(bucket, None), s3, map_runs)
    assert counted(got) == (["b"], [2, 1])
    assert got["summary"]["results"] == f"s3://{bucket}/{rest['Key']}"
    assert asked == [event(bucket, None)["execution"]]


def test_a_manifest_that_is_not_the_runs_is_refused(bucket: str) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    mine = write_run(bucket, {"a": "applied"})
    other = write_run(bucket, {"x": "failed"})
    source = {"Bucket": bucket, "Key": other["Key"]}
    s3.copy_object(Bucket=bucket, Key=mine["Key"], CopySource=source)  # another run's manifest
    runs = [{"mapRunArn": mine["arn"], "startDate": 1}]
    with pytest.raises(ResultsMissing, match=r"is map run .* not .*'s"):
        summarize_wave(event(bucket, None), s3, lambda _: runs)
    with pytest.raises(ResultsMissing, match="no manifest at s3://"):
        summarize_wave(event(bucket, {"Bucket": bucket, "Key": f"{PREFIX}/nope/manifest.json"}),
                       s3, lambda _: runs)  # fmt: skip
    with pytest.raises(ResultsMissing, match="has no map run"):
        summarize_wave(event(bucket, None), s3, lambda _: [])
