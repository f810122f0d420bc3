"""The completion of moto's Distributed Map (tests/fixtures/sfn_distributed_map.py) on its own:
a map over 12 items whose item 5 ends in a Fail state, through moto's interpreter, with and
without a tolerated failure percentage; and moto without the completion, to show the gap."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.fixtures.sfn_distributed_map import (
    MOTO_VERSION,
    check_moto_version,
    complete_aws_sdk_error_names,
    complete_distributed_map,
    exceeds,
)

REGION = "us-east-1"


def definition(bucket: str, tolerance: dict[str, Any], prefix: dict[str, str]) -> str:
    item = {
        "StartAt": "Which",
        "States": {
            "Which": {"Type": "Choice", "Default": "Fine",
                      "Choices": [{"Variable": "$.n", "NumericEquals": 5, "Next": "Boom"}]},
            "Boom": {"Type": "Fail", "Error": "Boom", "Cause": "item 5 failed"},
            "Fine": {"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"},
                     "End": True},
        },
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
    }  # fmt: skip
    the_map = {
        "Type": "Map", "ItemsPath": "$.items", "ItemSelector": {"n.$": "$$.Map.Item.Value"},
        "ItemProcessor": item, "MaxConcurrency": 4, **tolerance,
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                         "Parameters": {"Bucket": bucket, **prefix}},
        "Catch": [{"ErrorEquals": ["States.ExceedToleratedFailureThreshold"],
                   "ResultPath": "$.caught", "Next": "Caught"}],
        "End": True,
    }  # fmt: skip
    caught = {"Type": "Pass", "End": True}
    return json.dumps({"StartAt": "Fan", "States": {"Fan": the_map, "Caught": caught}})


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto import mock_aws

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        bucket = f"res-{uuid.uuid4().hex[:8]}"
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
        yield bucket


def run(
    bucket: str, tolerance: dict[str, Any], pct: int = 0, prefix: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run the map on items 0..11 (a literal Prefix by default); it must succeed."""
    described = execute(bucket, tolerance, pct, prefix or {"Prefix": "out/run"})
    assert described["status"] == "SUCCEEDED", described
    output: dict[str, Any] = json.loads(described["output"])
    return output


def execute(
    bucket: str, tolerance: dict[str, Any], pct: int, prefix: dict[str, str]
) -> dict[str, Any]:
    """Run the map on items 0..11; the execution as described when it ended."""
    text = definition(bucket, tolerance, prefix)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.create_state_machine(
        name=f"m-{uuid.uuid4().hex[:8]}", definition=text,
        roleArn="arn:aws:iam::123456789012:role/x",
    )["stateMachineArn"]  # fmt: skip
    payload = {"items": list(range(12)), "prefix": "out/run", "pct": pct}
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))
    deadline = time.monotonic() + 60
    while (described := sfn.describe_execution(executionArn=execution["executionArn"]))[
        "status"
    ] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return described


def written(bucket: str) -> dict[str, Any]:
    """The manifest under out/run/ and the entries of the files it names, by status."""
    s3 = boto3.client("s3", region_name=REGION)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="out/run/")["Contents"]]
    (manifest_key,) = [k for k in keys if k.endswith("/manifest.json")]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    entries = {}
    for status, files in manifest["ResultFiles"].items():
        entries[status] = []
        for f in files:
            body = s3.get_object(Bucket=bucket, Key=f["Key"])["Body"].read()
            assert len(body) == f["Size"]
            entries[status] += json.loads(body)
    return {"key": manifest_key, "manifest": manifest, "entries": entries, "keys": keys}


def test_one_of_twelve_failed_within_ten_percent_succeeds_with_every_result_written(
    world: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    complete_distributed_map(monkeypatch)
    output = run(world, {"ToleratedFailurePercentagePath": "$.pct"}, pct=10)
    assert "caught" not in output
    found = written(world)
    assert output["ResultWriterDetails"] == {"Bucket": world, "Key": found["key"]}
    assert found["manifest"]["MapRunArn"] == output["MapRunArn"]
    assert found["manifest"]["DestinationBucket"] == world
    assert found["key"] == f"out/run/{output['MapRunArn'].split(':')[-1]}/manifest.json"
    (failed,) = found["entries"]["FAILED"]
    assert (failed["Status"], failed["Error"], failed["Cause"]) == (
        "FAILED",
        "Boom",
        "item 5 failed",
    )
    assert json.loads(failed["Input"]) == {"n": 5} and "Output" not in failed
    succeeded = found["entries"]["SUCCEEDED"]
    assert sorted(json.loads(e["Input"])["n"] for e in succeeded) == [
        n for n in range(12) if n != 5
    ]
    assert all(json.loads(e["Output"]) == {"doubled": 2 * json.loads(e["Input"])["n"]}
               for e in succeeded)  # fmt: skip
    assert found["entries"]["PENDING"] == []
    assert len({e["ExecutionArn"] for e in [failed, *succeeded]}) == 12


@pytest.mark.parametrize(
    ("tolerance", "pct"),
    [
        ({"ToleratedFailurePercentagePath": "$.pct"}, 0),
        ({"ToleratedFailurePercentagePath": "$.pct"}, 8),  # 1/12 = 8.3 % > 8 %
        ({}, 0),  # nothing declared: 0 %
        ({"ToleratedFailureCount": 0, "ToleratedFailurePercentage": 50.0}, 0),  # either exceeded
    ],
)
def test_past_the_threshold_the_map_fails_and_still_writes_its_results(
    world: str, monkeypatch: pytest.MonkeyPatch, tolerance: dict[str, Any], pct: int
) -> None:
    complete_distributed_map(monkeypatch)
    output = run(world, tolerance, pct=pct)
    assert output["caught"]["Error"] == "States.ExceedToleratedFailureThreshold"
    found = written(world)
    assert [json.loads(e["Input"]) for e in found["entries"]["FAILED"]] == [{"n": 5}]
    assert len(found["entries"]["SUCCEEDED"]) == 11


def test_a_tolerated_count_lets_that_many_fail(world: str, monkeypatch: pytest.MonkeyPatch) -> None:
    complete_distributed_map(monkeypatch)
    assert "caught" not in run(world, {"ToleratedFailureCount": 1})


def test_moto_alone_has_both_gaps(world: str) -> None:
    """Without the completion the map succeeds at 0 % and the manifest lists no file (a
    literal Prefix: moto cannot select one from the input): if a moto upgrade closes the
    gaps, this fails and the completion can go."""
    tolerance = {"ToleratedFailurePercentagePath": "$.pct"}
    output = run(world, tolerance, pct=0, prefix={"Prefix": "out/run"})
    assert "caught" not in output
    found = written(world)
    assert found["manifest"]["ResultFiles"] == {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    assert found["keys"] == [found["key"]]


def test_a_path_in_result_writer_is_read_from_the_maps_output_so_it_fails(
    world: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in LocalStack's interpreter (moto's is a port): ``Prefix.$`` is evaluated against the
    map's output, not its input, and the wave fails. The completion leaves that as it is, so a
    definition that depends on AWS's reading fails here (statemachine/patcher.asl.json uses a
    literal Prefix)."""
    complete_distributed_map(monkeypatch)
    described = execute(world, {}, 0, {"Prefix.$": "$.prefix"})
    assert described["status"] == "FAILED", described


def test_a_literal_prefix_is_written_under_the_map_run_id_and_named_in_the_output(
    world: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As AWS does: ``<Prefix>/<map run id>/manifest.json``, and the map's output names it."""
    complete_distributed_map(monkeypatch)
    output = run(world, {"ToleratedFailureCount": 1})
    found = written(world)
    run_id = output["MapRunArn"].rsplit(":", 1)[-1]
    assert found["key"] == f"out/run/{run_id}/manifest.json"
    assert output["ResultWriterDetails"] == {"Bucket": world, "Key": found["key"]}


def test_another_moto_version_is_refused_loudly() -> None:
    from importlib.metadata import version

    assert version("moto") == MOTO_VERSION  # the pinned one is installed
    check_moto_version()
    refused = r"completes moto 5\.2\.6's .* moto 5\.3\.0 is installed"
    with pytest.raises(RuntimeError, match=refused):
        check_moto_version("5.3.0")


@pytest.mark.parametrize(
    ("failed", "total", "count", "percentage", "expected"),
    [
        (1, 12, None, 10.0, False),
        (1, 12, None, 0.0, True),
        (1, 12, None, 9.0, False),
        (1, 12, None, 8.0, True),
        (0, 12, None, None, False),
        (1, 12, None, None, True),
        (2, 12, 1, None, True),
        (1, 12, 1, None, False),
        (1, 12, 0, 50.0, True),
        (12, 12, None, 100.0, False),
        (0, 0, None, 0.0, False),
    ],
)
def test_the_threshold_rule(
    failed: int, total: int, count: int | None, percentage: float | None, expected: bool
) -> None:
    assert exceeds(failed, total, count, percentage) is expected


def test_aws_sdk_s3_errors_are_named_as_aws_names_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto names an aws-sdk:s3 task's unmodelled error s3.s3Exception (no binding for s3):
    if an upgrade adds it, the first assertion fails and the completion can go."""
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as aws_sdk,
    )

    throttled = ClientError({"Error": {"Code": "SlowDown", "Message": "slow"}}, "PutObject")
    name = aws_sdk.StateTaskServiceAwsSdk._normalise_service_error_name
    exception = aws_sdk.StateTaskServiceAwsSdk._normalise_exception_name
    assert exception(name("s3"), throttled) == "s3.s3Exception"
    complete_aws_sdk_error_names(monkeypatch)
    assert exception(name("s3"), throttled) == "S3.S3Exception"
    assert name("dynamodb") == "DynamoDb"  # moto's own bindings are kept
