"""template.yaml as checkov (the IaC scanner most teams run) reads it: no failed check.

checkov is installed by the Makefile into .local/tools/checkov (``make lint`` runs the same
command); it runs offline (``--skip-download``). What the template accepts is skipped in the
template itself (each resource's ``Metadata: checkov: skip``) with the reason, and this test
holds the list of skips to the ones reviewed (issue 28 item 10).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.test_infra_template import TEMPLATE, load_template

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / ".local" / "tools" / "checkov" / "bin" / "checkov"
# (resource, check) pairs skipped on purpose; a new skip must be reviewed and added here.
SKIPPED = {
    ("StackFlowPatcher", "CKV_AWS_116"),  # no DLQ: synchronous invokes only
    ("FleetSummary", "CKV_AWS_116"),
    ("FleetSummary", "CKV_AWS_117"),  # outside the VPC: S3 and Step Functions only
    ("FleetSummary", "CKV_AWS_115"),  # no reserved concurrency: one call per wave
}


def _checkov(path: Path) -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run 'make {CHECKOV.relative_to(REPO)}'")
    done = subprocess.run(
        [str(CHECKOV), "-f", str(path), "--framework", "cloudformation", "--skip-download",
         "--output", "json"],
        capture_output=True, text=True, timeout=300, cwd=path.parent,
    )  # fmt: skip
    assert done.stdout.startswith("{"), done.stdout[-2000:] + done.stderr[-2000:]
    report: dict[str, Any] = json.loads(done.stdout)
    report["exit"] = done.returncode
    return report


def _failed(report: dict[str, Any]) -> list[str]:
    return [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]


@pytest.mark.slow
def test_checkov_finds_nothing_but_the_reviewed_skips() -> None:
    report = _checkov(TEMPLATE)
    assert _failed(report) == [] and report["exit"] == 0
    assert report["summary"]["passed"] >= 55
    skipped = {
        (c["resource"].split(".", 1)[1], c["check_id"]) for c in report["results"]["skipped_checks"]
    }
    assert skipped == SKIPPED


def test_every_skip_says_why() -> None:
    for name, resource in load_template()["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert (name, skip["id"]) in SKIPPED, f"{name}: skip {skip['id']} not reviewed"
            assert len(skip.get("comment", "").split()) >= 12, f"{name} {skip['id']}: why?"


@pytest.mark.slow
def test_checkov_fails_a_log_group_without_the_key(tmp_path: Path) -> None:
    """The check can fail: the function's log group without KmsKeyId is reported."""
    text = TEMPLATE.read_text()
    group = re.search(r"  StackFlowPatcherLogGroup:\n(    .*\n|      .*\n)+", text)
    assert group and "KmsKeyId" in group[0]
    broken = tmp_path / "template.yaml"
    broken.write_text(text.replace(group[0], re.sub(r" *KmsKeyId:.*\n", "", group[0])))
    report = _checkov(broken)
    assert report["exit"] != 0
    assert _failed(report) == [
        "CKV_AWS_158 AWS::Logs::LogGroup.StackFlowPatcherLogGroup: "
        "Ensure that CloudWatch Log Group is encrypted by KMS"
    ]


def test_the_kms_key_reaches_every_place_it_protects() -> None:
    """KmsKeyArn, when given, encrypts the log groups, the functions' environment and the image
    repository; empty, AWS managed keys (ECR's is KMS too)."""
    template = load_template()
    resources = template["Resources"]
    given = {"Fn::If": ["HasKmsKey", {"Ref": "KmsKeyArn"}, {"Ref": "AWS::NoValue"}]}
    groups = [r for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(groups) == 4 and all(g["Properties"]["KmsKeyId"] == given for g in groups)
    functions = [r for r in resources.values() if r["Type"] == "AWS::Serverless::Function"]
    assert len(functions) == 2 and all(f["Properties"]["KmsKeyArn"] == given for f in functions)
    ecr = resources["LongRunRepository"]["Properties"]["EncryptionConfiguration"]
    assert ecr == {"EncryptionType": "KMS", "KmsKey": given}
    assert template["Parameters"]["KmsKeyArn"]["Default"] == ""
    assert template["Conditions"]["HasKmsKey"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "KmsKeyArn"}, ""]}]
    }


def test_reserved_concurrency_leaves_room_for_a_fleet() -> None:
    """The migration function's cap: above a fleet's default max_concurrency (10), with room
    for status and dry runs; 0 means no reservation (never a function throttled to zero)."""
    template = load_template()
    asl = json.loads((REPO / "statemachine" / "patcher.asl.json").read_text())
    fleet_default = asl["States"]["Defaults"]["Parameters"]["defaults"]["max_concurrency"]
    param = template["Parameters"]["ReservedConcurrency"]
    assert param["Default"] > fleet_default + 1 and param["MinValue"] == 0
    function = template["Resources"]["StackFlowPatcher"]["Properties"]
    reserved = {"Ref": "ReservedConcurrency"}
    assert function["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasReservedConcurrency", reserved, {"Ref": "AWS::NoValue"}]
    }
    assert template["Conditions"]["HasReservedConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ReservedConcurrency"}, "0"]}]
    }
