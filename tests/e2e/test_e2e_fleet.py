"""SPEC section 8, fleets: twelve real databases through moto's interpreter and the real handler.
A canary wave first, then the rest at most max_concurrency at a time; failure accounting by the
Distributed Map itself (a failed target's child execution fails; ToleratedFailurePercentagePath);
each target's record written by its ResultWriter; the summary function's summary as output (or
as the Fail state's Cause)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest

from tests.e2e.sfnkit import REGION, RESULTS_PREFIX, Aws, StateMachine, sfn_world
from tests.fixtures.engine import schema_snapshot, tables
from tests.fixtures.postgres import PgServer

N = 12
PHASES = ("canary", "rest")
NAMES = [f"db{i:02d}" for i in range(N)]


# Each scenario runs whole executions (seconds to a minute): CI runs them, test-fast does not.
pytestmark = pytest.mark.slow


@pytest.fixture
def fleet(
    monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, pg_server: PgServer
) -> Iterator[tuple[Aws, StateMachine, dict[str, str]]]:
    world = sfn_world(monkeypatch, s3_endpoint)
    aws = next(world)
    created = [pg_server.create_database() for _ in NAMES]
    dsns = {name: pg_server.dsn_for(db) for name, db in zip(NAMES, created, strict=True)}
    targets = {name: aws.create_secret(f"fleet/{name}", dsn) for name, dsn in dsns.items()}
    monkeypatch.setenv("PATCHER_TARGETS", json.dumps(targets))
    aws.put("0001_t.up.sql", "CREATE TABLE t (id int);\n")
    aws.put("0002_u.up.sql", "CREATE TABLE u (id int);\n")
    yield aws, aws.state_machine(targets), dsns
    next(world, None)
    for db in created:
        pg_server.drop_database(db)


def break_database(dsn: str) -> None:
    """A table in the way: version 1's CREATE TABLE t fails there."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (other text)")


def key_of(execution: str, database: str) -> str:
    return f"{RESULTS_PREFIX}{execution}/failed/{database}.json"


def stored_keys(aws: Aws, execution: str) -> list[str]:
    s3 = boto3.client("s3", region_name=REGION)
    listed = s3.list_objects_v2(Bucket=aws.results_bucket, Prefix=f"{RESULTS_PREFIX}{execution}/")
    return sorted(o["Key"] for o in listed.get("Contents", []) if "/failed/" in o["Key"])


def assert_stored_as_returned(
    aws: Aws, execution: str, database: str, returned: dict[str, Any], file: str
) -> None:
    """The failed target's whole result is in S3, as the function returned it: its error's
    type, message and position, its entries and current_version."""
    stored = aws.failed_result(execution, database)
    assert stored["result"] == returned
    assert (stored["database"], stored["ok"], stored["status"]) == (database, False, "failed")
    assert stored["error"] == {"type": "MigrationFailed", "message": returned["error"]["message"]}
    error = stored["result"]["error"]
    assert (error["type"], error["file"], error["line"]) == ("MigrationFailed", file, 1)
    assert stored["result"]["current_version"] is None  # nothing applied there
    assert stored["result_key"] == key_of(execution, database)


def migrated(dsn: str) -> bool:
    return "schema_migrations" in tables(dsn) and "u" in tables(dsn)


def test_a_failing_canary_stops_the_fleet_before_any_other_database(
    fleet: tuple[Aws, StateMachine, dict[str, str]],
) -> None:
    aws, machine, dsns = fleet
    break_database(dsns["db00"])
    execution = machine.run({"action": "migrate", "databases": "*"})
    assert (execution.status, execution.error) == ("FAILED", "CanaryFailed")
    summary = execution.cause_json
    assert (summary["databases"], summary["ran"], summary["failed"]) == (N, 1, 1)
    assert [(f["database"], f["error"]["type"]) for f in summary["failures"]] == [
        ("db00", "MigrationFailed")
    ]
    assert [p["database"] for p in aws.invocations] == ["db00"]
    assert not any("schema_migrations" in tables(dsns[n]) for n in NAMES[1:])
    (returned,) = aws.results
    assert_stored_as_returned(aws, execution.name, "db00", returned, "0001_t.up.sql")
    assert summary["failures"][0]["result_key"] == key_of(execution.name, "db00")


def test_a_later_failure_fails_the_fleet_at_zero_tolerance_and_is_named(
    fleet: tuple[Aws, StateMachine, dict[str, str]],
) -> None:
    aws, machine, dsns = fleet
    break_database(dsns["db07"])
    execution = machine.run({"action": "migrate", "databases": NAMES, "max_concurrency": 4})
    assert (execution.status, execution.error) == ("FAILED", "FleetFailed")
    summary = execution.cause_json
    assert (summary["databases"], summary["ran"], summary["succeeded"]) == (N, N, N - 1)
    assert summary["counts"]["applied"] == N - 1 and summary["counts"]["failed"] == 1
    assert [(f["database"], f["error"]["type"]) for f in summary["failures"]] == [
        ("db07", "MigrationFailed")
    ]
    assert all(migrated(dsns[n]) for n in NAMES if n != "db07")
    assert "schema_migrations" not in tables(dsns["db07"]) or not migrated(dsns["db07"])
    assert sorted(p["database"] for p in aws.invocations) == NAMES  # once each, canary too
    results = aws.wave_records(execution.name, "rest")  # ResultWriter's, the canary's too
    assert sorted(results) == NAMES
    assert (results["db07"]["Status"], results["db07"]["Error"]) == ("FAILED", "MigrationFailed")
    (returned,) = [r for r in aws.results if not r["ok"]]
    assert json.loads(results["db07"]["Cause"]) == {
        "database": "db07", "status": "failed", "type": "MigrationFailed",
        "message": returned["error"]["message"], "result_key": key_of(execution.name, "db07"),
    }  # fmt: skip
    assert "version 1 up failed" in returned["error"]["message"]
    assert_stored_as_returned(aws, execution.name, "db07", returned, "0001_t.up.sql")
    assert summary["failures"][0]["result_key"] == key_of(execution.name, "db07")
    assert stored_keys(aws, execution.name) == [key_of(execution.name, "db07")]  # failed only
    assert results["db03"]["Output"]["result"]["status"] == "applied"
    assert results["db00"]["Output"]["status"] == "applied"  # the canary's reused result


def test_a_failure_within_the_tolerated_percentage_succeeds_with_the_summary(
    fleet: tuple[Aws, StateMachine, dict[str, str]],
) -> None:
    """One of twelve is 8.3 %: tolerated at 9 %, not at 8 % (the second run finds the others
    up to date and the same one failing)."""
    aws, machine, dsns = fleet
    break_database(dsns["db05"])
    execution = machine.run(
        {"action": "migrate", "databases": "*", "tolerated_failure_percentage": 9}
    )
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["failed"] == 1
    assert execution.output["failures"][0]["database"] == "db05"
    strict = machine.run({"action": "migrate", "databases": "*", "tolerated_failure_percentage": 8})
    assert (strict.status, strict.error) == ("FAILED", "FleetFailed")
    # Both executions' waves wrote under the one literal prefix; each summary read its own run
    # (the failed map's through ListMapRuns): nothing of the first is counted in the second.
    assert strict.cause_json["counts"]["up_to_date"] == N - 1 and strict.cause_json["ran"] == N
    manifests = {aws.wave_manifest(e.name, p) for e in (execution, strict) for p in PHASES}
    assert len(manifests) == 4
    assert strict.cause_json["results"] == f"s3://{aws.results_bucket}/" + aws.wave_manifest(
        strict.name, "rest"
    )


def test_one_of_twelve_failing_within_ten_percent_succeeds_and_is_named(
    fleet: tuple[Aws, StateMachine, dict[str, str]],
) -> None:
    aws, machine, dsns = fleet
    break_database(dsns["db09"])
    execution = machine.run(
        {"action": "migrate", "databases": "*", "tolerated_failure_percentage": 10}
    )
    assert execution.status == "SUCCEEDED", execution.cause
    summary = execution.output
    assert (summary["ran"], summary["succeeded"], summary["failed"]) == (N, N - 1, 1)
    assert summary["counts"]["applied"] == N - 1 and summary["counts"]["failed"] == 1
    ((name, status, error_type),) = [
        (f["database"], f["status"], f["error"]["type"]) for f in summary["failures"]
    ]
    assert (name, status, error_type) == ("db09", "failed", "MigrationFailed")
    assert "db09 (MigrationFailed)" in summary["message"]
    manifest = aws.wave_manifest(execution.name, "rest")  # the map's ResultWriterDetails'
    assert summary["results"] == f"s3://{aws.results_bucket}/{manifest}"
    assert all(migrated(dsns[n]) for n in NAMES if n != "db09") and not migrated(dsns["db09"])
    records = aws.wave_records(execution.name, "rest")
    assert records["db09"]["Error"] == "MigrationFailed" and records["db09"]["Output"] is None
    (returned,) = [r for r in aws.results if not r["ok"]]
    assert_stored_as_returned(aws, execution.name, "db09", returned, "0001_t.up.sql")
    assert summary["failures"][0]["result_key"] == key_of(execution.name, "db09")
    assert len(aws.summaries) == 2  # after the canary wave, after the rest


def test_a_fleet_dry_run_changes_nothing_anywhere(
    fleet: tuple[Aws, StateMachine, dict[str, str]],
) -> None:
    aws, machine, dsns = fleet
    before = {n: schema_snapshot(dsn) for n, dsn in dsns.items()}
    execution = machine.run({"action": "migrate", "databases": "*", "dry_run": True})
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["counts"]["planned"] == N and execution.output["failed"] == 0
    assert all(p["dry_run"] is True for p in aws.invocations)
    assert {n: schema_snapshot(dsn) for n, dsn in dsns.items()} == before
    assert not any("schema_migrations" in tables(dsn) for dsn in dsns.values())


def test_unknown_names_are_refused_before_anything_runs(
    fleet: tuple[Aws, StateMachine, dict[str, str]],
) -> None:
    aws, machine, _ = fleet
    execution = machine.run({"action": "migrate", "databases": ["db01", "nope"]})
    assert (execution.status, execution.error) == ("FAILED", "InvalidRequest")
    assert 'unknown databases ["nope"]' in (execution.cause or "")
    single = machine.run({"action": "migrate", "database": "nope"})
    assert (single.status, single.error) == ("FAILED", "InvalidRequest")
    assert "unknown database 'nope': the configured targets are db00, db01" in (single.cause or "")
    assert [p["database"] for p in aws.invocations] == ["nope"]  # the function refused it
