"""patcher.fleet_summary: records as ResultWriter writes them, counted into the summary."""

from __future__ import annotations

import json
from typing import Any

import pytest

from patcher.fleet_summary import MAX_FAILURES, status_of, summarize


def succeeded(database: str, status: str = "applied") -> dict[str, Any]:
    out = {"database": database, "ok": True, "status": status, "current_version": 2,
           "invocations": 1, "error": None, "result": {"status": status}}  # fmt: skip
    return {"Status": "SUCCEEDED", "Input": json.dumps({"database": database}),
            "Output": json.dumps(out)}  # fmt: skip


def failed(database: str, error: str, cause: str = "it broke") -> dict[str, Any]:
    return {"Status": "FAILED", "Input": json.dumps({"database": database, "in": {}}),
            "Error": error, "Cause": cause}  # fmt: skip


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
                                 "partial": 0, "failed": 1, "locked": 1, "invalid": 0}  # fmt: skip
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


def test_past_fifty_failures_the_rest_are_counted() -> None:
    records = {"FAILED": [failed(f"db{i:04d}", "MigrationFailed", "x" * 1000) for i in range(150)]}
    summary = summarize({**EVENT, "databases": 150}, records)["summary"]
    assert len(summary["failures"]) == MAX_FAILURES and summary["failures_not_listed"] == 100
    assert len(json.dumps(summary)) < 32_768  # a Fail state's Cause holds it
    assert summary["message"].endswith("and 100 more")
