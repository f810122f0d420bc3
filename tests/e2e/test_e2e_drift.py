"""SPEC 13 through the Lambda: ``{"action": "drift"}`` on one database (the result and the
SchemaDrift metric, per target and for the alarm) and across a fleet through the state machine
(every target surveyed, drifted ones counted and named, not failed)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest

from tests.e2e.e2ekit import LambdaEnv
from tests.e2e.sfnkit import Aws, StateMachine, sfn_world
from tests.fixtures.postgres import PgServer

NAMES = ["db0", "db1", "db2"]


def emf(stdout: str) -> list[dict[str, object]]:
    return [json.loads(x) for x in stdout.splitlines() if x.startswith('{"_aws"')]


def test_drift_payload_and_its_metric(
    lambda_env: LambdaEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    lambda_env.put("0001_a.up.sql", "CREATE TABLE a (id int PRIMARY KEY);\n")
    assert lambda_env.invoke({"action": "migrate"})["status"] == "applied"
    capsys.readouterr()
    clean = lambda_env.invoke({"action": "drift"})
    assert (clean["ok"], clean["status"], clean["differences"]) == (True, "in_sync", [])
    with psycopg.connect(lambda_env.dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE a ADD COLUMN hotfix text")
    drifted = lambda_env.invoke({"action": "drift"})
    assert (drifted["ok"], drifted["status"]) == (False, "drifted")
    assert drifted["error"]["type"] == "DriftDetected"
    assert drifted["differences"][0]["object"] == "public.a.hotfix"
    docs = [d for d in emf(capsys.readouterr().out) if "SchemaDrift" in d]
    per_target = [d for d in docs if "database" in d]
    fleetwide = [d for d in docs if "database" not in d]
    assert [d["SchemaDrift"] for d in per_target] == [[0.0], [1.0]]
    assert {d["database"] for d in per_target} == {"default"}
    assert [d["SchemaDrift"] for d in fleetwide] == [[0.0], [1.0]]
    assert {d["service"] for d in docs} == {"stackflowpatcher"}


@pytest.fixture
def fleet(
    monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, pg_server: PgServer
) -> Iterator[tuple[Aws, StateMachine, dict[str, str]]]:
    world = sfn_world(monkeypatch, s3_endpoint)
    aws = next(world)
    created = [pg_server.create_database() for _ in NAMES]
    dsns = {name: pg_server.dsn_for(db) for name, db in zip(NAMES, created, strict=True)}
    targets = {name: aws.create_secret(f"drift/{name}", dsn) for name, dsn in dsns.items()}
    monkeypatch.setenv("PATCHER_TARGETS", json.dumps(targets))
    aws.put("0001_t.up.sql", "CREATE TABLE t (id int PRIMARY KEY, name text);\n")
    yield aws, aws.state_machine(targets), dsns
    next(world, None)
    for db in created:
        pg_server.drop_database(db)


@pytest.mark.slow
def test_a_fleet_survey_names_the_drifted_targets(
    fleet: tuple[Aws, StateMachine, dict[str, str]],
) -> None:
    _, machine, dsns = fleet
    assert machine.run({"action": "migrate", "databases": "*"}).status == "SUCCEEDED"
    with psycopg.connect(dsns["db0"], autocommit=True) as conn:  # the canary drifted
        conn.execute("ALTER TABLE t ALTER COLUMN name SET DEFAULT 'x'")
    with psycopg.connect(dsns["db2"], autocommit=True) as conn:
        conn.execute("CREATE INDEX t_name_idx ON t (name)")
    survey = machine.run({"action": "drift", "databases": "*"})
    assert survey.status == "SUCCEEDED", survey.cause
    summary = survey.output
    assert summary["ran"] == 3 and summary["failed"] == 0
    assert (summary["counts"]["in_sync"], summary["counts"]["drifted"]) == (1, 2)
    assert (summary["drifted"], summary["drifted_databases"]) == (2, ["db0", "db2"])
    assert summary["message"] == "3 of 3 targets ran, none failed; 2 drifted: db0, db2"
