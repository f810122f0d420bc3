"""The commands, as plain functions: configuration in, a typed ``RunResult`` out.

``migrate``, ``rollback``, ``status``, ``baseline`` and ``repair`` are what the Lambda handler
and the CLI both call (alembic's ``command.py`` is the model); each builds a ``Request`` (which
validates itself: an invalid one is refused here, before anything opens) and hands it to
``execute``, which composes the concrete source and the connection port (a PostgreSQL backend
from the configuration and its secret) with the engine. The adapters render the result
(``RunResult.to_dict``). ``Invocation`` says who runs it and what surrounds the run (the Lambda
clock, an event sink for logs and metrics, a source or an S3 client passed in by tests).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import field, replace
from typing import Any

from patcher.app.config import Config
from patcher.app.environment import invoked_by_default
from patcher.app.reaching import reach_for, wait_warning
from patcher.app.result import RunResult
from patcher.core.errors import PatcherError
from patcher.core.interrupt import Interrupt
from patcher.core.models import Action, Request
from patcher.core.record import record
from patcher.db import PostgresBackend
from patcher.db.reach import Reach
from patcher.engine.context import EventSink, RunOptions
from patcher.engine.outcome import Outcome
from patcher.engine.runner import run
from patcher.sources import MigrationSource, open_source

WAIT_SHOWN_MS = 1000  # database_wait_ms is shown from this wait on (or after a retry)

APP_NAME = "stackflowpatcher"
CONNECT_TIMEOUT_SECONDS = 10


@record
class Invocation:
    """Who runs a request, and what surrounds the run.

    ``conninfo`` gives the libpq connection string (default: the configuration's URL or
    secret); ``time_left_ms`` is the Lambda clock; ``tuning`` overrides RunOptions fields that
    have no environment setting (lock polling and retry back-off), for tests and benchmarks."""

    request_id: str = field(default_factory=lambda: f"local-{uuid.uuid4()}")
    invoked_by: str = field(default_factory=invoked_by_default)
    conninfo: Callable[[], str] | None = None
    time_left_ms: Callable[[], int] | None = None
    events: EventSink | None = None
    source: MigrationSource | None = None
    s3_client: Any = None
    tuning: Mapping[str, Any] | None = None
    interrupt: Interrupt | None = None  # the CLI's SIGINT / SIGTERM (core/interrupt.py)


def migrate(
    config: Config,
    *,
    target: int | None = None,
    dry_run: bool = False,
    verify: bool = False,
    phase: str | None = None,
    invocation: Invocation | None = None,
) -> RunResult:
    """Apply the pending versions (up to ``target``; ``phase``: SPEC 11's expand / contract)."""
    fields = {"dry_run": dry_run, "target": target, "verify": verify, "phase": phase}
    return _build_and_execute("migrate", fields, config, invocation)


def rollback(
    config: Config,
    *,
    target: int | None = None,
    steps: int | None = None,
    dry_run: bool = False,
    verify: bool = False,
    invocation: Invocation | None = None,
) -> RunResult:
    """Revert the newest version (or ``steps`` of them, or every one above ``target``)."""
    fields = {"dry_run": dry_run, "target": target, "steps": steps, "verify": verify}
    return _build_and_execute("rollback", fields, config, invocation)


def status(config: Config, *, invocation: Invocation | None = None) -> RunResult:
    """What is applied and what is pending; takes no lock and changes nothing."""
    return _build_and_execute("status", {}, config, invocation)


def baseline(
    config: Config,
    *,
    target: int,
    dry_run: bool = False,
    invocation: Invocation | None = None,
) -> RunResult:
    """Mark every version up to ``target`` as applied without running it (empty history only)."""
    fields = {"dry_run": dry_run, "target": target}
    return _build_and_execute("baseline", fields, config, invocation)


def repair(
    config: Config, *, dry_run: bool = False, invocation: Invocation | None = None
) -> RunResult:
    """Clear dirty marks and re-record changed checksums, after a human has looked."""
    return _build_and_execute("repair", {"dry_run": dry_run}, config, invocation)


def _build_and_execute(
    action: Action, fields: dict[str, Any], config: Config, invocation: Invocation | None
) -> RunResult:
    """Build the request (validating it) and run it; an invalid one is refused, never run."""
    invocation = invocation or Invocation()
    started = time.perf_counter()
    try:
        request = Request(action, **fields)
    except PatcherError as exc:
        return refused(action, bool(fields.get("dry_run")), exc, invocation.request_id, started)
    return execute(request, config, invocation)


def execute(request: Request, config: Config, invocation: Invocation) -> RunResult:
    """Run one valid request end to end and return its result (never raises PatcherError)."""
    started = time.perf_counter()
    if request.action == "drift":  # the schema against its snapshot: no source (SPEC 13)
        from patcher.app.drift import drift

        return drift(request, config, _connector(config, invocation), invocation.request_id)
    source = invocation.source
    if source is None:
        try:
            source = open_source(
                config.source,
                client=invocation.s3_client,
                expected_bucket_owner=config.expected_bucket_owner,
                max_script_bytes=config.max_script_bytes,
            )
        except PatcherError as exc:
            return refused(request.action, request.dry_run, exc, invocation.request_id, started)
    reach = reach_for(
        request,
        config.connect_budget_seconds,
        config.time_margin_seconds,
        invocation.time_left_ms,
        invocation.events,
    )
    if request.action == "adopt":
        outcome = _adopt(request, config, invocation, source, reach)
    else:
        outcome = run(
            request,
            source=with_layout(source, config.layout),
            connect=_connector(config, invocation, reach),
            options=_options(config, invocation.tuning),
            time_left_ms=invocation.time_left_ms,
            events=invocation.events,
            interrupt=invocation.interrupt,
        )
    outcome.warnings += filter(None, [wait_warning(reach)])
    return RunResult.of(
        outcome,
        action=request.action,
        dry_run=request.dry_run,
        request_id=invocation.request_id,
        duration_ms=_ms_since(started),
        database_wait_ms=_waited(reach),
    )


def _waited(reach: Reach) -> int | None:
    """How long opening sessions took, when the database made the run wait (more than one
    attempt, or a second or more): a healthy run's result keeps exactly the SPEC's keys."""
    return reach.waited_ms if reach.retried or reach.waited_ms >= WAIT_SHOWN_MS else None


def adopt(
    config: Config,
    *,
    tool: str,
    table: str | None = None,
    dry_run: bool = False,
    invocation: Invocation | None = None,
) -> RunResult:
    """Take over ``tool``'s history for the versions it applied (SPEC section 10)."""
    fields = {"dry_run": dry_run, "adopt_from": tool, "adopt_table": table}
    return _build_and_execute("adopt", fields, config, invocation)


def _adopt(
    request: Request, config: Config, invocation: Invocation, source: MigrationSource, reach: Reach
) -> Outcome:
    """An adoption on one session; the layout is the tool's unless PATCHER_LAYOUT says."""
    from patcher.app.adopt import LAYOUT_OF, adopt

    tool = request.adopt_from or ""
    layout = config.layout if config.layout != "auto" else LAYOUT_OF.get(tool, tool)
    try:
        backend = _connector(config, invocation, reach)()
    except PatcherError as exc:
        return Outcome(status="invalid").fail(exc)
    try:
        with backend.errors_translated():
            return adopt(
                request,
                with_layout(source, layout),
                backend,
                _options(config, invocation.tuning),
                time_left_ms=invocation.time_left_ms,
                events=invocation.events,
            )
    except PatcherError as exc:
        return Outcome(status="invalid").fail(exc)
    finally:
        backend.close()


def with_layout(source: MigrationSource, layout: str) -> MigrationSource:
    """The source read in PATCHER_LAYOUT's layout (SPEC 2a); ``auto`` detects it."""
    from patcher.sources.layout_source import LayoutSource

    return source if isinstance(source, LayoutSource) else LayoutSource(source, layout)


def _connector(
    config: Config, invocation: Invocation, reach: Reach | None = None
) -> Callable[[], PostgresBackend]:
    """How the engine opens a session: the PostgreSQL backend, named for the request.

    The engine's connection port (``engine.ports.Connect``), composed here from the
    configuration and, on first use, its secret: the engine only calls it."""
    conninfo = invocation.conninfo or conninfo_provider(config)

    def connect() -> PostgresBackend:
        return PostgresBackend.connect(
            conninfo(),
            connect_timeout=_connect_timeout(invocation.time_left_ms, config.time_margin_seconds),
            application_name=f"{APP_NAME}:{invocation.request_id}",
            lock_timeout=config.lock_timeout,
            statement_timeout=config.statement_timeout,
            schema=config.schema,
            table=config.table,
            request_id=invocation.request_id,
            invoked_by=invocation.invoked_by,
            sslmode=config.sslmode,
            sslrootcert=config.sslrootcert,
            iam_auth=config.iam_auth,
            reach=reach,
        )

    return connect


def _options(config: Config, tuning: Mapping[str, Any] | None) -> RunOptions:
    options = RunOptions(
        lock_wait_seconds=config.lock_wait_seconds,
        time_margin_seconds=config.time_margin_seconds,
        lock_timeout=config.lock_timeout,
        drift_ignore=config.drift_ignore,
        release_gate=_release_gate(config),
    )
    return replace(options, **tuning) if tuning else options


def _release_gate(config: Config) -> Callable[[], dict[str, Any]] | None:
    if config.release_alias is None:
        return None
    from patcher.app.release import alias_reader

    return alias_reader(config.release_alias)


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
) -> RunResult:
    """The result for a request stopped before the runner could start."""
    return RunResult.of(
        Outcome(status=error.status, error=error),
        action=action,
        dry_run=dry_run,
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
        from patcher.app.secrets import conninfo_from_secret

        return conninfo_from_secret(arn)

    return from_secret
