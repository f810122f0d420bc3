"""The Lambda entry point: parse the payload, read the environment, run, report. Nothing else.

``lambda_handler(event, context)`` always returns a SPEC result object; it never raises for a
bad payload, a bad configuration or an unreachable database.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from patcher.config import load_config
from patcher.errors import PatcherError
from patcher.request import action_of, dry_run_of, parse_payload
from patcher.service import conninfo_provider, execute, refused

logger = Logger(service="stackflowpatcher")
metrics = Metrics(namespace="StackFlowPatcher", service="stackflowpatcher")
tracer = Tracer(service="stackflowpatcher")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Handle one invocation; see SPEC section 4 for the payload and the result."""
    started = time.perf_counter()
    request_id = str(getattr(context, "aws_request_id", "local"))
    try:
        request = parse_payload(event)
        config = load_config()
    except PatcherError as exc:
        result = refused(action_of(event), dry_run_of(event), exc, request_id, started)
    else:
        logger.append_keys(action=request.action, dry_run=request.dry_run)
        result = execute(
            request,
            config,
            conninfo=conninfo_provider(config),
            request_id=request_id,
            invoked_by=_invoked_by(context),
            time_left_ms=getattr(context, "get_remaining_time_in_millis", None),
            events=_log_event,
        )
    _publish(result)
    return result


def _log_event(name: str, fields: dict[str, Any]) -> None:
    """One structured log line per runner event (each migration, the lock acquisition)."""
    logger.info(name, extra=fields)
    if name == "lock_acquired":
        metrics.add_metric("LockWait", MetricUnit.Milliseconds, fields["lock_wait_ms"])


def _publish(result: dict[str, Any]) -> None:
    """The run's summary as a log line and EMF metrics."""
    counts = {"applied": 0, "reverted": 0, "failed": 0}
    ran = result["action"] in ("migrate", "rollback") and not result["dry_run"]
    for entry in result["migrations"] if ran else ():
        if entry["state"] in counts:
            counts[entry["state"]] += 1
    metrics.add_metric("MigrationsApplied", MetricUnit.Count, counts["applied"])
    metrics.add_metric("MigrationsReverted", MetricUnit.Count, counts["reverted"])
    metrics.add_metric("MigrationsFailed", MetricUnit.Count, counts["failed"])
    metrics.add_metric("RunDuration", MetricUnit.Milliseconds, result["duration_ms"])
    summary = {k: result[k] for k in ("ok", "status", "current_version", "duration_ms")}
    summary["error"] = result["error"]
    summary["pending"] = len(result["pending"])
    (logger.info if result["ok"] else logger.error)("run finished", extra=summary)


def _invoked_by(context: Any) -> str:
    """Who asked: the caller's own name from the client context (patcher invoke sets it)."""
    arn = str(getattr(context, "invoked_function_arn", "") or "lambda")
    client = getattr(context, "client_context", None)
    custom = getattr(client, "custom", None) or {}
    caller = custom.get("invoked_by") if isinstance(custom, dict) else None
    return f"{str(caller)[:200]} via {arn}" if caller else arn
