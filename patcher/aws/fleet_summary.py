"""The fleet summary (SPEC section 8): what a wave's Distributed Map wrote to S3, counted.

Handler ``patcher.aws.fleet_summary.handler``: a second, small function of template.yaml from the
same package, that may only read the results prefix (and list its state machine's map runs). The
state machine calls it after each wave (whether the map succeeded or failed past its tolerated
failures) with::

    {"bucket": ..., "prefix": "<ResultsPrefix>waves",          # ResultWriter's literal Prefix
     "written": {"Bucket": ..., "Key": ".../manifest.json"} | null,  # ResultWriterDetails
     "execution": "<execution ARN>", "phase": "single" | "canary" | "rest",
     "databases": 12, "canary": "db00" | null, "dry_run": false,
     "tolerated_failure_percentage": 0}

ResultWriter writes ``<prefix>/<map run id>/manifest.json`` naming ``SUCCEEDED_n.json`` and
``FAILED_n.json`` (and ``PENDING_n.json``): JSON arrays of child execution records, whose
``Input`` and ``Output`` are JSON strings, with ``Error`` and ``Cause`` when the child failed
(https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html). Only this
wave's manifest is read, so runs sharing the literal prefix never mix: the one the map's output
names (``written``) or, when the map failed past its tolerated failures (its error output names
no manifest), the one of the execution's newest map run (ListMapRuns: the waves of an execution
run one after another), whose ``MapRunArn`` must be that run's. A child that succeeded
outputs its target's compact result; one that failed first stored its whole result at
``<ResultsPrefix><execution>/failed/<database>.json`` and ended in a Fail state whose Error is
the result's error type and Cause a compact JSON object (database, status, type, message,
result_key). A plain-text Cause is taken as the message; a failed item's status is the Cause's,
else the one its error type has (``patcher.core.errors``) or, for the machine's own, below.

Returns ``{"summary": {...}, "one": <the only child's output> | null}``: ``one`` (single
database and canary waves) carries the whole last result on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from patcher.core.errors import STATUS_OF, PatcherError
from patcher.core.quiet_logs import pin_sdk_loggers

STATUSES = (
    "applied",
    "up_to_date",
    "planned",
    "reverted",
    "partial",
    "failed",
    "locked",
    "invalid",
    "in_sync",
    "drifted",
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
CAUSE_BUDGET = 30_000  # the summary as JSON, at most: long names and keys list fewer failures


class ResultsMissing(Exception):
    """The wave's manifest is not where the map run says: the map wrote no results."""


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


def locate(
    event: dict[str, Any], map_runs: Callable[[str], list[dict[str, Any]]]
) -> tuple[str, str, str | None]:
    """Where this wave's manifest.json is (bucket, key) and, when it was looked up, the map run
    it must be of: ResultWriterDetails when the map succeeded, else the execution's newest map
    run's ``<prefix>/<map run id>/manifest.json``."""
    written = event.get("written")
    if isinstance(written, dict) and isinstance(written.get("Key"), str):
        return str(written.get("Bucket") or event["bucket"]), written["Key"], None
    runs = map_runs(event["execution"])
    if not runs:
        raise ResultsMissing(f"execution {event['execution']} has no map run")
    arn = str(max(runs, key=lambda r: r["startDate"])["mapRunArn"])
    key = f"{event['prefix'].rstrip('/')}/{map_run_id(arn)}/manifest.json"
    return event["bucket"], key, arn


def map_run_id(arn: str) -> str:
    """The map run's id, the last part of its ARN (ResultWriter's directory under the prefix)."""
    return arn.rsplit(":", 1)[-1]


def read_records(
    s3: Any, bucket: str, key: str, map_run: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The wave's child execution records by manifest section (FAILED, PENDING, SUCCEEDED), from
    the manifest at ``key`` (whose MapRunArn must be ``map_run`` when given)."""
    try:
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        raise ResultsMissing(f"no manifest at s3://{bucket}/{key}") from None
    if map_run is not None and manifest.get("MapRunArn") != map_run:
        raise ResultsMissing(
            f"s3://{bucket}/{key} is map run {manifest.get('MapRunArn')}'s, not {map_run}'s"
        )
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
    cause = cause_of(record.get("Cause"))
    status = cause.get("status")
    entry: dict[str, Any] = {
        "database": given.get("database"), "ok": False,
        "status": status if status in STATUSES else status_of(error_type),
        "current_version": None, "invocations": None,
        "error": {"type": error_type, "message": str(cause.get("message") or "")[:MAX_MESSAGE]},
        "result_key": cause.get("result_key") if isinstance(cause.get("result_key"), str) else None,
    }  # fmt: skip
    if cause.get("not_written"):
        entry["not_written"] = str(cause["not_written"])[:MAX_MESSAGE]
    return entry


def cause_of(text: str | None) -> dict[str, Any]:
    """A failed child's Cause: the item's Fail state writes JSON (database, status, type,
    message, result_key: the key of its whole result, or null and not_written); anything else
    (an older definition, a child that failed outside it: States.Runtime, States.Timeout...) is
    plain text, the message."""
    try:
        parsed = json.loads(text or "")
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        return parsed
    return {"message": text or ""}


def summarize(event: dict[str, Any], records: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The summary (its shape is the execution's output) and the one child's output."""
    done = records.get("SUCCEEDED", []) + records.get("FAILED", [])
    entries = sorted((entry_of(r) for r in done), key=lambda e: str(e["database"]))
    failures = [e for e in entries if e["ok"] is not True and e["status"] != "drifted"]
    drifted = [str(e["database"]) for e in entries if e["status"] == "drifted"]
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
    if event.get("action") == "drift" or drifted:  # SPEC 13: which targets drifted
        summary["drifted"] = len(drifted)
        summary["drifted_databases"] = drifted[:MAX_FAILURES]
    summary["message"] = message(summary)
    while summary["failures"] and len(json.dumps(summary)) > CAUSE_BUDGET:
        summary["failures"].pop()
        summary["failures_not_listed"] += 1
        summary["message"] = message(summary)
    one = None
    if event.get("phase") in ("single", "canary") and len(records.get("SUCCEEDED", [])) == 1:
        one = json.loads(records["SUCCEEDED"][0].get("Output") or "null")
    return {"summary": summary, "one": one}


def message(summary: dict[str, Any]) -> str:
    """One line for people: how many failed, against what tolerance, which ones and why."""
    ran, failed = summary["ran"], summary["failed"]
    drifted = (
        f"; {summary['drifted']} drifted: {', '.join(summary['drifted_databases'])}"
        if summary.get("drifted")
        else ""
    )
    if not failed:
        return f"{ran} of {summary['databases']} targets ran, none failed{drifted}"
    named = ", ".join(f"{e['database']} ({e['error']['type']})" for e in summary["failures"])
    more = f" and {summary['failures_not_listed']} more" if summary["failures_not_listed"] else ""
    share = 100 * failed / ran if ran else 100.0
    return (
        f"{failed} of {ran} targets failed ({share:.1f} %, tolerated "
        f"{summary['tolerated_failure_percentage']} %): {named}{more}{drifted}"
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: find the wave's manifest, read its results, return the summary."""
    import boto3

    pin_sdk_loggers()  # the results it reads (rows in a failed target's message) stay out of DEBUG
    bucket, prefix = event["bucket"], event["prefix"]
    if not isinstance(bucket, str) or not isinstance(prefix, str) or not prefix:
        raise ValueError("bucket and prefix must be non-empty strings")
    s3 = boto3.client("s3")
    return summarize_wave(event, s3, lambda arn: list_map_runs(boto3.client("stepfunctions"), arn))


def list_map_runs(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every map run of the execution (ListMapRuns, all pages)."""
    runs: list[dict[str, Any]] = []
    for page in sfn.get_paginator("list_map_runs").paginate(executionArn=execution_arn):
        runs += page.get("mapRuns", [])
    return runs


def summarize_wave(
    event: dict[str, Any], s3: Any, map_runs: Callable[[str], list[dict[str, Any]]]
) -> dict[str, Any]:
    """The wave's summary from its own manifest; ``results`` names that manifest."""
    bucket, key, map_run = locate(event, map_runs)
    records = read_records(s3, bucket, key, map_run)
    return summarize({**event, "results": f"s3://{bucket}/{key}"}, records)
