"""What an operator sees: one JSON log line per migration with the request id, EMF metrics,
and no password, token or secret anywhere in the logs or the results."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from patcher.aws import handler
from patcher.core.events import PROGRESS_EVENTS
from patcher.dev.devrun import LambdaContext
from tests.e2e.e2ekit import LambdaEnv, Secret, event
from tests.fixtures.engine import query
from tests.fixtures.s3 import FAKE_SECRET


@pytest.fixture
def log_lines(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """The Powertools logger's output (its handler kept the stdout it saw at import)."""
    buffer = io.StringIO()
    monkeypatch.setattr(handler.logger.registered_handler, "stream", buffer)
    return buffer


def _parse(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_full_run_logs_every_migration_and_leaks_no_secret(
    lambda_env: LambdaEnv,
    db_secret: Secret,
    log_lines: io.StringIO,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lambda_env.put("0001_a.up.sql", "CREATE TABLE a (id int);\n")
    lambda_env.put("0001_a.down.sql", "DROP TABLE a;\n")
    lambda_env.put("0002_b.up.sql", "CREATE TABLE b (id int);\n")
    lambda_env.put("0002_b.down.sql", "DROP TABLE b;\n")
    lambda_env.put("0003_broken.up.sql", "CREATE TABLE c (id int);\nSELECT 1/0;\n")
    contexts = {name: LambdaContext() for name in ("plan", "migrate", "status", "rollback")}
    results = [
        lambda_env.invoke(event("migrate_dry_run"), contexts["plan"]),
        lambda_env.invoke(event("migrate"), contexts["migrate"]),
        lambda_env.invoke(event("status"), contexts["status"]),
        lambda_env.invoke(event("rollback_one"), contexts["rollback"]),
    ]
    assert [r["status"] for r in results] == ["planned", "failed", "planned", "reverted"]
    monkeypatch.setenv(
        "PATCHER_DATABASE_URL", f"postgresql://app:{db_secret.password}@127.0.0.1:9/x"
    )
    monkeypatch.delenv("PATCHER_DB_SECRET_ARN")
    results.append(lambda_env.invoke(event("status")))
    assert results[-1]["error"]["type"] == "DatabaseUnavailable"

    logs = log_lines.getvalue()
    stdout = capsys.readouterr().out
    audit = query(lambda_env.dsn, "SELECT * FROM schema_migrations_log")
    everything = logs + stdout + json.dumps(results) + repr(audit)
    assert db_secret.password not in everything
    assert FAKE_SECRET not in everything

    lines = _parse(logs)
    migrate_id = contexts["migrate"].aws_request_id
    per_migration = [
        {k: line.get(k) for k in ("version", "direction", "outcome", "function_request_id")}
        for line in lines
        if line["message"] == "migration"
    ]
    rollback_id = contexts["rollback"].aws_request_id
    assert per_migration == [
        {"version": 1, "direction": "up", "outcome": "applied", "function_request_id": migrate_id},
        {"version": 2, "direction": "up", "outcome": "applied", "function_request_id": migrate_id},
        {"version": 3, "direction": "up", "outcome": "failed", "function_request_id": migrate_id},
        {
            "version": 2,
            "direction": "down",
            "outcome": "reverted",
            "function_request_id": rollback_id,
        },
    ]
    assert not [line for line in lines if line["message"] in PROGRESS_EVENTS]  # CLI-only
    ran = [line for line in lines if line["message"] == "migration" and line["outcome"] != "failed"]
    assert all(isinstance(line["duration_ms"], int) for line in ran)
    failed = next(line for line in lines if line.get("outcome") == "failed")
    assert (failed["level"], failed["error"]) == ("ERROR", "MigrationFailed")
    finished = [line for line in lines if line["message"] == "run finished"]
    assert [line["status"] for line in finished] == [r["status"] for r in results]
    assert all(line["function_request_id"] for line in lines)
    assert {line["service"] for line in lines} == {"stackflowpatcher"}

    metrics = [json.loads(x) for x in stdout.splitlines() if x.startswith('{"_aws"')]
    assert len(metrics) == len(results), "one EMF document per invocation"
    names = {m["Name"] for m in metrics[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names == {
        "MigrationsApplied", "MigrationsReverted", "MigrationsFailed", "RunsLocked", "LockWait",
        "RunDuration",
    }  # fmt: skip
    assert (metrics[1]["MigrationsApplied"], metrics[1]["MigrationsFailed"]) == ([2.0], [1.0])
    assert [m["RunsLocked"] for m in metrics] == [[0.0]] * len(results)
    assert metrics[3]["MigrationsReverted"] == [1.0]
    assert metrics[1]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "StackFlowPatcher"


def test_a_backfill_logs_its_rows_and_sends_the_backfill_rows_metric(
    lambda_env: LambdaEnv, log_lines: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    query(lambda_env.dsn, "CREATE TABLE big (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0)")
    query(lambda_env.dsn, "INSERT INTO big (id) SELECT g FROM generate_series(1, 250) g")
    lambda_env.put(
        "0001_bump.up.sql", "-- patcher:backfill batch_rows=100\nUPDATE big SET n = 1;\n"
    )
    result = lambda_env.invoke(event("migrate"))
    assert result["status"] == "applied" and result["progress"]["rows_done"] == 250
    lines = [line for line in _parse(log_lines.getvalue()) if line["message"] == "backfill"]
    assert [(x["version"], x["outcome"], x["rows_now"], x["rows_done"]) for x in lines] == [
        (1, "applied", 250, 250)
    ]
    stdout = capsys.readouterr().out
    metrics = [json.loads(x) for x in stdout.splitlines() if x.startswith('{"_aws"')]
    assert metrics[0]["BackfillRows"] == [250.0]


def test_a_locked_run_is_counted_for_the_alarm(
    lambda_env: LambdaEnv,
    log_lines: io.StringIO,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another run held the lock past PATCHER_LOCK_WAIT_SECONDS: nothing ran, no migration
    failed, and RunsLocked is 1 (the MigrationsFailed alarm sums it with MigrationsFailed)."""
    import psycopg

    from patcher.db.advisory_lock import lock_key

    lambda_env.put("0001_a.up.sql", "CREATE TABLE a (id int);\n")
    monkeypatch.setenv("PATCHER_LOCK_WAIT_SECONDS", "0.2")
    capsys.readouterr()
    with psycopg.connect(lambda_env.dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("public", "schema_migrations"),))
        locked = lambda_env.invoke(event("migrate"))
        planned = lambda_env.invoke(event("migrate_dry_run"))  # a dry run takes no lock
    applied = lambda_env.invoke(event("migrate"))
    assert [r["status"] for r in (locked, planned, applied)] == ["locked", "planned", "applied"]
    stdout = capsys.readouterr().out
    metrics = [json.loads(x) for x in stdout.splitlines() if x.startswith('{"_aws"')]
    assert [(m["RunsLocked"], m["MigrationsFailed"]) for m in metrics] == [
        ([1.0], [0.0]),
        ([0.0], [0.0]),
        ([0.0], [0.0]),
    ]
