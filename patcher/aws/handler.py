"""The Lambda entry point: parse the payload, read the environment, run, report. Nothing else.

``lambda_handler(event, context)`` always returns a SPEC result object; it never raises for a
bad payload, a bad configuration or an unreachable database. Observability (Powertools):
one JSON log line per migration (``version``, ``direction``, ``outcome``, ``duration_ms``)
and one summary line, all carrying the request id; EMF metrics ``MigrationsApplied``,
``MigrationsReverted``, ``MigrationsFailed``, ``RunsLocked``, ``LockWait``, ``RunDuration``
(and ``SchemaDrift`` for ``drift``: ``drift_metric.py``); X-Ray spans for the handler, the
payload check and the run.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from patcher.app.commands import Invocation, execute, refused
from patcher.app.config import Config, load_config, select_database
from patcher.app.environment import powertools_names
from patcher.app.result import RunResult
from patcher.aws import drift_metric
from patcher.aws.request import action_of, dry_run_of, parse_payload
from patcher.aws.stored import for_caller, without_detail
from patcher.aws.tracing import make_tracer
from patcher.core.errors import DatabaseUnavailable, PatcherError
from patcher.core.events import PROGRESS_EVENTS
from patcher.core.models import Request
from patcher.core.quiet_logs import pin_sdk_loggers

pin_sdk_loggers()  # botocore at DEBUG logs the secret's body: never, whatever the root level
SERVICE, NAMESPACE = powertools_names()  # the template's POWERTOOLS_* variables win
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = make_tracer(SERVICE)  # X-Ray only when tracing is on (patcher/aws/tracing.py)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Handle one invocation; see SPEC section 4 for the payload and the result."""
    started = time.perf_counter()
    request_id = str(getattr(context, "aws_request_id", "local"))
    prepared = _prepare(event)
    if isinstance(prepared, PatcherError):
        result = refused(action_of(event), dry_run_of(event), prepared, request_id, started)
    else:
        request, config = prepared
        logger.append_keys(action=request.action, dry_run=request.dry_run)
        tracer.put_annotation("action", request.action)
        result = _run(request, config, context, request_id)
        drift_metric.publish(
            metrics, result, request.database, service=SERVICE, namespace=NAMESPACE
        )
        if config.db_secret_arn and isinstance(result.error, DatabaseUnavailable):
            from patcher.app.secrets import forget_cached_secrets

            forget_cached_secrets()  # a rotated password: read the secret afresh next time
    tracer.put_annotation("status", result.status)
    rendered = result.to_dict()  # the SPEC result, cut to a Lambda response's limit
    _publish(result, rendered["error"])
    keep = not isinstance(prepared, PatcherError) and prepared[1].results_keep_detail
    return for_caller(rendered, context, keep)  # no DETAIL in what the state machine stores


@tracer.capture_method(capture_response=False)
def _prepare(event: Any) -> tuple[Request, Config] | PatcherError:
    """The validated payload and the configuration, or the PatcherError refusing them.

    Returned, not raised: the tracer logs every exception leaving a captured method with its
    traceback at ERROR, and a refused payload is an answer, not a crash."""
    try:
        request = parse_payload(event)
        return request, select_database(load_config(), request.database)
    except PatcherError as exc:
        return exc


@tracer.capture_method(capture_response=False)
def _run(request: Request, config: Config, context: Any, request_id: str) -> RunResult:
    def on_event(name: str, fields: dict[str, Any]) -> None:
        if name in PROGRESS_EVENTS:  # for a terminal's live progress, not for the log
            return
        if name == "migration":
            _log_migration(fields)
        elif name == "lock_acquired":
            logger.info("lock acquired", extra=fields)
            metrics.add_metric("LockWait", MetricUnit.Milliseconds, fields["lock_wait_ms"])
        elif name == "backfill":  # rows this invocation's part of a backfill did
            logger.info("backfill", extra=fields)
            metrics.add_metric("BackfillRows", MetricUnit.Count, fields["rows_now"])
        else:
            logger.info(name, extra=fields)

    invocation = Invocation(
        request_id=request_id,
        invoked_by=_invoked_by(context),
        time_left_ms=getattr(context, "get_remaining_time_in_millis", None),
        events=on_event,
    )
    return execute(request, config, invocation)


def _log_migration(fields: dict[str, Any]) -> None:
    """One line per migration that ran: version, direction, outcome, duration."""
    line = {
        "version": fields["version"],
        "direction": fields["direction"],
        "outcome": fields["state"],
        "duration_ms": fields.get("duration_ms"),
    }
    if fields.get("error"):
        line["error"] = fields["error"]
    (logger.error if fields["state"] == "failed" else logger.info)("migration", extra=line)


def _publish(result: RunResult, error: dict[str, Any] | None) -> None:
    """The run's summary as a log line and EMF metrics (``error``: as the result renders it)."""
    counts = {"applied": 0, "reverted": 0, "failed": 0}
    ran = result.action in ("migrate", "rollback") and not result.dry_run
    for entry in result.entries if ran else ():
        if entry.state in counts:
            counts[entry.state] += 1
    metrics.add_metric("MigrationsApplied", MetricUnit.Count, counts["applied"])
    metrics.add_metric("MigrationsReverted", MetricUnit.Count, counts["reverted"])
    metrics.add_metric("MigrationsFailed", MetricUnit.Count, counts["failed"])
    # Another run held the lock too long: nothing ran; the MigrationsFailed alarm counts it too.
    metrics.add_metric("RunsLocked", MetricUnit.Count, int(result.status == "locked"))
    metrics.add_metric("RunDuration", MetricUnit.Milliseconds, result.duration_ms)
    summary = {
        "ok": result.ok,
        "status": result.status,
        "current_version": result.current_version,
        "duration_ms": result.duration_ms,
        "error": _loggable_error(error),
        "pending": len(result.pending),
    }
    (logger.info if result.ok else logger.error)("run finished", extra=summary)


def _loggable_error(error: dict[str, Any] | None) -> dict[str, Any] | None:
    """The result's error for the log: without PostgreSQL's DETAIL, which can quote row
    values (``Key (email)=(ann@example.com) already exists``), unless the log level is DEBUG."""
    if logger.log_level <= logging.DEBUG:
        return error
    return without_detail(error, "set POWERTOOLS_LOG_LEVEL=DEBUG to log it; the result has it")


def _invoked_by(context: Any) -> str:
    """Who asked: the caller's own name from the client context (patcher invoke sets it)."""
    arn = str(getattr(context, "invoked_function_arn", "") or "lambda")
    client = getattr(context, "client_context", None)
    custom = getattr(client, "custom", None) or {}
    caller = custom.get("invoked_by") if isinstance(custom, dict) else None
    return f"{str(caller)[:200]} via {arn}" if caller else arn
