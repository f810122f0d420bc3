"""The fleet summary (SPEC section 8): what a wave's Distributed Map wrote to S3, counted.

Handler ``patcher.fleet_summary.handler``: a second, small function of template.yaml from the
same package, that may only read the results prefix. The state machine calls it after each wave
(whether the map succeeded or failed past its tolerated failures) with::

    {"bucket": ..., "prefix": "<ResultsPrefix><execution>/<phase>",   # ResultWriter's Prefix
     "results": "s3://.../<execution>/", "phase": "single" | "canary" | "rest",
     "databases": 12, "canary": "db00" | null, "dry_run": false,
     "tolerated_failure_percentage": 0}

ResultWriter writes ``<prefix>/<map run id>/manifest.json`` naming ``SUCCEEDED_n.json`` and
``FAILED_n.json`` (and ``PENDING_n.json``): JSON arrays of child execution records, whose
``Input`` and ``Output`` are JSON strings, with ``Error`` and ``Cause`` when the child failed
(https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html). A child
that succeeded outputs its target's compact result; one that failed ended in a Fail state whose
Error is the result's error type and Cause its message, so its status is the one that error
type has (``patcher.core.errors``) or, for the state machine's own types, below.

Returns ``{"summary": {...}, "one": <the only child's output> | null}``: ``one`` (single
database and canary waves) carries the whole last result on.
"""

from __future__ import annotations

import json
from typing import Any

from patcher.core.errors import STATUS_OF, PatcherError

STATUSES = (
    "applied",
    "up_to_date",
    "planned",
    "reverted",
    "partial",
    "failed",
    "locked",
    "invalid",
)
# Error types the state machine itself ends an item with (statemachine/patcher.asl.json).
MACHINE_TYPES = {
    "NoProgress": "failed",
    "TooManyInvocations": "partial",
    "FunctionError": "failed",
    "LongRunFailed": "failed",
}
MAX_FAILURES = 50  # listed; past that, counted: a Fail Cause holds 32,768 characters
MAX_MESSAGE = 200


class ResultsMissing(Exception):
    """No manifest under the wave's prefix: the map wrote no results."""


def status_of(error_type: str) -> str:
    """The result status a failed item's error type stands for ("failed" when unknown)."""
    if error_type in MACHINE_TYPES:
        return MACHINE_TYPES[error_type]
    pending: list[type[PatcherError]] = [PatcherError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == error_type:
            return STATUS_OF[cls.category]
        pending.extend(cls.__subclasses__())
    return "failed"


def _body(s3: Any, bucket: str, key: str) -> Any:
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]  # JSONL


def read_records(s3: Any, bucket: str, prefix: str) -> dict[str, list[dict[str, Any]]]:
    """The wave's child execution records by manifest section (FAILED, PENDING, SUCCEEDED)."""
    found: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        found += [o for o in page.get("Contents", []) if o["Key"].endswith("/manifest.json")]
    if not found:
        raise ResultsMissing(f"no manifest.json under s3://{bucket}/{prefix}/")
    latest = max(found, key=lambda o: o["LastModified"])["Key"]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=latest)["Body"].read())
    records: dict[str, list[dict[str, Any]]] = {}
    for section, files in manifest.get("ResultFiles", {}).items():
        records[section] = [r for f in files for r in _body(s3, bucket, f["Key"])]
    return records


def entry_of(record: dict[str, Any]) -> dict[str, Any]:
    """A target's line of the summary from its child execution record."""
    if record.get("Status") == "SUCCEEDED":
        out = json.loads(record.get("Output") or "null") or {}
        keys = ("database", "ok", "status", "current_version", "invocations", "error")
        return {k: out.get(k) for k in keys}
    given = json.loads(record.get("Input") or "null") or {}
    error_type = record.get("Error") or str(record.get("Status"))
    message = (record.get("Cause") or "")[:MAX_MESSAGE]
    return {
        "database": given.get("database"), "ok": False, "status": status_of(error_type),
        "current_version": None, "invocations": None,
        "error": {"type": error_type, "message": message},
    }  # fmt: skip


def summarize(event: dict[str, Any], records: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The summary (its shape is the execution's output) and the one child's output."""
    done = records.get("SUCCEEDED", []) + records.get("FAILED", [])
    entries = sorted((entry_of(r) for r in done), key=lambda e: str(e["database"]))
    failures = [e for e in entries if e["ok"] is not True]
    counts = {s: sum(e["status"] == s for e in entries) for s in STATUSES}
    tolerated = event.get("tolerated_failure_percentage", 0)
    summary: dict[str, Any] = {
        "databases": event.get("databases", len(entries)), "ran": len(entries),
        "succeeded": len(entries) - len(failures), "failed": len(failures),
        "not_run": len(records.get("PENDING", [])), "counts": counts,
        "canary": event.get("canary"),
        "stopped_after_canary": event.get("phase") == "canary" and bool(failures),
        "dry_run": event.get("dry_run", False), "tolerated_failure_percentage": tolerated,
        "results": event.get("results"), "failures": failures[:MAX_FAILURES],
        "failures_not_listed": max(0, len(failures) - MAX_FAILURES),
    }  # fmt: skip
    summary["message"] = message(summary)
    one = None
    if event.get("phase") in ("single", "canary") and len(records.get("SUCCEEDED", [])) == 1:
        one = json.loads(records["SUCCEEDED"][0].get("Output") or "null")
    return {"summary": summary, "one": one}


def message(summary: dict[str, Any]) -> str:
    """One line for people: how many failed, against what tolerance, which ones and why."""
    ran, failed = summary["ran"], summary["failed"]
    if not failed:
        return f"{ran} of {summary['databases']} targets ran, none failed"
    named = ", ".join(f"{e['database']} ({e['error']['type']})" for e in summary["failures"])
    more = f" and {summary['failures_not_listed']} more" if summary["failures_not_listed"] else ""
    share = 100 * failed / ran if ran else 100.0
    return (
        f"{failed} of {ran} targets failed ({share:.1f} %, tolerated "
        f"{summary['tolerated_failure_percentage']} %): {named}{more}"
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: read the wave's results, return the summary."""
    import boto3

    bucket, prefix = event["bucket"], event["prefix"]
    if not isinstance(bucket, str) or not isinstance(prefix, str) or not prefix:
        raise ValueError("bucket and prefix must be non-empty strings")
    s3 = boto3.client("s3")
    return summarize(event, read_records(s3, bucket, prefix.rstrip("/")))
