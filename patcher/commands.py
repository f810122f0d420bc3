"""Composition: configuration + request -> concrete source and backend -> runner -> result.

The Lambda handler and the CLI are thin adapters around ``execute``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from patcher.config import Config
from patcher.core.errors import PatcherError
from patcher.core.models import Request
from patcher.db.postgres import PostgresBackend
from patcher.engine.outcome import EventSink, Outcome, RunOptions, status_for
from patcher.engine.result import build_result
from patcher.engine.runner import run
from patcher.sources import MigrationSource, open_source

APP_NAME = "stackflowpatcher"


def execute(
    request: Request,
    config: Config,
    *,
    conninfo: Callable[[], str],
    request_id: str,
    invoked_by: str,
    time_left_ms: Callable[[], int] | None = None,
    events: EventSink | None = None,
    source: MigrationSource | None = None,
    s3_client: Any = None,
    tuning: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one request end to end and return the SPEC result (never raises PatcherError).

    ``tuning`` overrides RunOptions fields that have no environment setting (lock polling and
    retry back-off); tests and benchmarks use it to keep waits short."""
    started = time.perf_counter()
    if source is None:
        try:
            source = open_source(
                config.source,
                client=s3_client,
                expected_bucket_owner=config.expected_bucket_owner,
            )
        except PatcherError as exc:
            return refused(request.action, request.dry_run, exc, request_id, started)

    def connect() -> PostgresBackend:
        return PostgresBackend.connect(
            conninfo(),
            connect_timeout=_connect_timeout(time_left_ms, config.time_margin_seconds),
            application_name=f"{APP_NAME}:{request_id}",
            lock_timeout=config.lock_timeout,
            statement_timeout=config.statement_timeout,
            schema=config.schema,
            table=config.table,
            request_id=request_id,
            invoked_by=invoked_by,
            sslmode=config.sslmode,
            sslrootcert=config.sslrootcert,
        )

    options = RunOptions(
        lock_wait_seconds=config.lock_wait_seconds,
        time_margin_seconds=config.time_margin_seconds,
        statement_timeout_ms=config.statement_timeout_ms,
        lock_timeout=config.lock_timeout,
    )
    if tuning:
        options = replace(options, **tuning)
    outcome = run(
        request,
        source=source,
        connect=connect,
        options=options,
        time_left_ms=time_left_ms,
        events=events,
    )
    return build_result(
        action=request.action,
        dry_run=request.dry_run,
        outcome=outcome,
        request_id=request_id,
        duration_ms=_ms_since(started),
    )


CONNECT_TIMEOUT_SECONDS = 10


def _connect_timeout(time_left_ms: Callable[[], int] | None, margin_s: float) -> int:
    """Seconds to wait for the server: 10, or less when the Lambda deadline is nearer.

    libpq treats values below 2 as 2; a host that never answers must not eat the time a
    result needs to get back."""
    if time_left_ms is None:
        return CONNECT_TIMEOUT_SECONDS
    budget = int(time_left_ms() / 1000 - margin_s)
    return max(2, min(CONNECT_TIMEOUT_SECONDS, budget))


def refused(
    action: str, dry_run: bool, error: PatcherError, request_id: str, started: float
) -> dict[str, Any]:
    """The result for a request stopped before the runner could start."""
    outcome = Outcome(status=status_for(error), error=error)
    return build_result(
        action=action,
        dry_run=dry_run,
        outcome=outcome,
        request_id=request_id,
        duration_ms=_ms_since(started),
    )


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def conninfo_provider(config: Config) -> Callable[[], str]:
    """Where the database connection string comes from: the URL, or the secret on first use."""
    url = config.database_url
    if url:
        return lambda: url
    arn = config.db_secret_arn or ""

    def from_secret() -> str:
        from patcher.secrets import conninfo_from_secret

        return conninfo_from_secret(arn)

    return from_secret
