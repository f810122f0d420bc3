"""patcher.aws.fleet_summary: records as ResultWriter writes them, counted into the summary."""

from __future__ import annotations

import json
from typing import Any

import pytest

from patcher.aws.fleet_summary import CAUSE_BUDGET, MAX_FAILURES, status_of, summarize


def succeeded(database: str, status: str = "applied") -> dict[str, Any]:
    out = {"database": database, "ok": True, "status": status, "current_version": 2,
           "invocations": 1, "error": None, "result": {"status": status}}  # fmt: skip
    return {"Status": "SUCCEEDED", "Input": json.dumps({"database": database}),
            "Output": json.dumps(out)}  # fmt: skip


def failed(database: str, error: str, cause: str = "it broke") -> dict[str, Any]:
    return {"Status": "FAILED", "Input": json.dumps({"database": database, "in": {}}),
            "Error": error, "Cause": cause}  # fmt: skip


def key_of(database: str, execution: str = "run-1") -> str:
    return f"runs/{execution}/failed/{database}.json"


def failed_json(
    database: str, error: str, status: str, message: str, **more: Any
) -> dict[str, Any]:
    """As the item's Fail state writes it: the Cause is JSON naming the stored result."""
    cause = {"database": database, "status": status, "type": error, "message": message,
             "result_key": key_of(database), **more}  # fmt: skip
    return failed(database, error, json.dumps(cause, separators=(",", ":")))


EVENT = {"phase": "rest", "databases": 4, "canary": "a", "dry_run": False,
         "tolerated_failure_percentage": 10, "results": "s3://b/runs/x/"}  # fmt: skip


@pytest.mark.parametrize(
    ("error_type", "status"),
    [("MigrationFailed", "failed"), ("DeadlineExceeded", "failed"), ("LockTimeout", "locked"),
     ("InvalidRequest", "invalid"), ("ChecksumMismatch", "invalid"), ("NoProgress", "failed"),
     ("TooManyInvocations", "partial"), ("States.Timeout", "failed")],
)  # fmt: skip
def test_a_failed_items_status_is_its_error_types(error_type: str, status: str) -> None:
    assert status_of(error_type) == status


def test_the_summary_counts_and_names_the_failures() -> None:
    records = {
        "SUCCEEDED": [succeeded("a"), succeeded("b", "up_to_date")],
        "FAILED": [failed("d", "LockTimeout"), failed("c", "MigrationFailed", "version 1 up")],
        "PENDING": [],
    }
    got = summarize(EVENT, records)
    summary = got["summary"]
    assert (summary["ran"], summary["succeeded"], summary["failed"]) == (4, 2, 2)
    assert summary["counts"] == {"applied": 1, "up_to_date": 1, "planned": 0, "reverted": 0,
                                 "partial": 0, "failed": 1, "locked": 1, "invalid": 0,
                                 "in_sync": 0, "drifted": 0}  # fmt: skip
    assert "drifted" not in summary  # a migrate's summary is as before
    assert [(f["database"], f["status"], f["error"]) for f in summary["failures"]] == [
        ("c", "failed", {"type": "MigrationFailed", "message": "version 1 up"}),
        ("d", "locked", {"type": "LockTimeout", "message": "it broke"}),
    ]
    assert summary["message"] == (
        "2 of 4 targets failed (50.0 %, tolerated 10 %): c (MigrationFailed), d (LockTimeout)"
    )
    assert summary["stopped_after_canary"] is False and got["one"] is None


def test_a_wave_of_one_carries_its_output_on() -> None:
    got = summarize({**EVENT, "phase": "canary", "databases": 4}, {"SUCCEEDED": [succeeded("a")]})
    assert got["one"]["result"] == {"status": "applied"} and got["summary"]["failed"] == 0
    stopped = summarize({**EVENT, "phase": "canary"}, {"FAILED": [failed("a", "InvalidSource")]})
    assert stopped["summary"]["stopped_after_canary"] is True and stopped["one"] is None


def test_a_json_cause_gives_the_message_status_and_where_the_whole_result_is() -> None:
    records = {
        "SUCCEEDED": [succeeded("a")],
        "FAILED": [
            failed_json("c", "MigrationFailed", "failed", "version 1 up failed at 0001_t.up.sql"),
            failed_json("d", "TooManyInvocations", "partial", "still partial after 20"),
            failed("e", "LockTimeout", "another run holds the lock"),  # plain text: the message
        ],
    }
    failures = summarize(EVENT, records)["summary"]["failures"]
    assert [(f["database"], f["status"], f["error"], f["result_key"]) for f in failures] == [
        ("c", "failed", {"type": "MigrationFailed",
                         "message": "version 1 up failed at 0001_t.up.sql"}, key_of("c")),
        ("d", "partial", {"type": "TooManyInvocations", "message": "still partial after 20"},
         key_of("d")),
        ("e", "locked", {"type": "LockTimeout", "message": "another run holds the lock"}, None),
    ]  # fmt: skip
    assert all("not_written" not in f for f in failures)


@pytest.mark.parametrize(
    "cause",
    ['{"no": "message"}', "[1, 2]", '"a string"', "{not json", "", "42"],
)
def test_a_cause_that_is_not_the_machines_json_is_the_message(cause: str) -> None:
    (entry,) = summarize(EVENT, {"FAILED": [failed("c", "States.Runtime", cause)]})["summary"][
        "failures"
    ]
    assert entry["error"] == {"type": "States.Runtime", "message": cause}
    assert (entry["status"], entry["result_key"]) == ("failed", None)


def test_a_result_that_could_not_be_stored_says_why() -> None:
    record = failed_json("c", "MigrationFailed", "failed", "version 1 up failed",
                         result_key=None, not_written="S3.S3Exception: Access Denied")  # fmt: skip
    (entry,) = summarize(EVENT, {"FAILED": [record]})["summary"]["failures"]
    assert entry["error"]["type"] == "MigrationFailed" and entry["result_key"] is None
    assert entry["not_written"] == "S3.S3Exception: Access Denied"


def test_an_unknown_status_in_the_cause_falls_back_to_the_error_types() -> None:
    record = failed_json("c", "LockTimeout", "weird", "held")
    (entry,) = summarize(EVENT, {"FAILED": [record]})["summary"]["failures"]
    assert entry["status"] == "locked"


@pytest.mark.parametrize("form", ["text", "json"])
def test_past_fifty_failures_the_rest_are_counted(form: str) -> None:
    """Long messages and the longest keys (an 80-character execution name) still fit."""
    execution = "r" * 80

    def one(i: int) -> dict[str, Any]:
        name = f"database-{i:04d}-" + "n" * 40
        if form == "text":
            return failed(name, "MigrationFailed", "x" * 1000)
        cause = {"database": name, "status": "failed", "type": "MigrationFailed",
                 "message": "x" * 1000, "result_key": key_of(name, execution)}  # fmt: skip
        return failed(name, "MigrationFailed", json.dumps(cause))

    records = {"FAILED": [one(i) for i in range(150)]}
    summary = summarize({**EVENT, "databases": 150}, records)["summary"]
    listed, size = len(summary["failures"]), len(json.dumps(summary))
    assert size <= CAUSE_BUDGET < 32_768  # a Fail state's Cause holds it
    if form == "text":
        assert listed == MAX_FAILURES
    else:  # as many as fit: one more entry of the same size would not
        assert (
            listed < MAX_FAILURES and size + len(json.dumps(summary["failures"][-1])) > CAUSE_BUDGET
        )
    assert summary["failures_not_listed"] == 150 - listed
    assert summary["message"].endswith(f"and {150 - listed} more")
    assert all(len(f["error"]["message"]) == 200 for f in summary["failures"])
    if form == "json":
        assert summary["failures"][0]["result_key"] == key_of(
            "database-0000-" + "n" * 40, execution
        )


def test_a_drift_survey_counts_drifted_targets_apart_from_failures() -> None:
    """SPEC 13: drifted targets are the survey's finding (their items succeed), counted and
    named; a target that could not be compared is a failure as any other."""
    drifted = succeeded("b", "drifted")
    out = json.loads(drifted["Output"])
    out.update(ok=False, error={"type": "DriftDetected", "message": "2 objects"})
    drifted["Output"] = json.dumps(out)
    records = {
        "SUCCEEDED": [succeeded("a", "in_sync"), drifted, succeeded("c", "in_sync")],
        "FAILED": [failed_json("d", "MissingSnapshot", "invalid", "no schema snapshot")],
    }
    summary = summarize({**EVENT, "action": "drift"}, records)["summary"]
    assert (summary["counts"]["in_sync"], summary["counts"]["drifted"]) == (2, 1)
    assert (summary["drifted"], summary["drifted_databases"]) == (1, ["b"])
    assert [f["database"] for f in summary["failures"]] == ["d"] and summary["failed"] == 1
    assert summary["message"].endswith("; 1 drifted: b")
    clean = summarize({**EVENT, "action": "drift"}, {"SUCCEEDED": [succeeded("a", "in_sync")]})
    assert clean["summary"]["drifted"] == 0
    assert clean["summary"]["message"] == "1 of 4 targets ran, none failed"
