"""SPEC 8 + 11: ``phase`` given to a fleet (PATCHER_TARGETS, the state machine's Distributed
Map): the phase applies per target, the canary wave first; a contract the release gate holds
at the canary stops the fleet before any other database. Real databases, moto's interpreter,
the real handler, moto's Lambda aliases for the gate."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator

import boto3
import psycopg
import pytest

from tests.e2e.sfnkit import REGION, Aws, StateMachine, sfn_world
from tests.fixtures.engine import history, tables
from tests.fixtures.postgres import PgServer

NAMES = ["db00", "db01", "db02"]
CANARY = "db02"  # not the first name: the input's canary goes first

pytestmark = pytest.mark.slow


@pytest.fixture
def fleet(
    monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, pg_server: PgServer
) -> Iterator[tuple[Aws, StateMachine, dict[str, str]]]:
    world = sfn_world(monkeypatch, s3_endpoint)
    aws = next(world)
    created = [pg_server.create_database() for _ in NAMES]
    dsns = {name: pg_server.dsn_for(db) for name, db in zip(NAMES, created, strict=True)}
    for dsn in dsns.values():  # what an earlier release made: the contract drops from it
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE users (id bigint PRIMARY KEY, name text)")
    targets = {name: aws.create_secret(f"fleet/{name}", dsn) for name, dsn in dsns.items()}
    monkeypatch.setenv("PATCHER_TARGETS", json.dumps(targets))
    aws.put("0001_email.up.sql", "ALTER TABLE users ADD COLUMN email text;\n")
    aws.put("0002_drop.up.sql", "ALTER TABLE users DROP COLUMN name;\n")
    yield aws, aws.state_machine(targets), dsns
    next(world, None)
    for db in created:
        pg_server.drop_database(db)


def columns(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'users' "
            "ORDER BY ordinal_position"
        ).fetchall()
    return [r[0] for r in rows]


def test_expand_then_contract_per_target_canary_first(
    fleet: tuple[Aws, StateMachine, dict[str, str]],
) -> None:
    aws, machine, dsns = fleet
    expand = machine.run(
        {"action": "migrate", "phase": "expand", "databases": "*", "canary": CANARY}
    )
    assert expand.status == "SUCCEEDED", expand.cause
    assert aws.invocations[0]["database"] == CANARY  # the canary wave ran alone, first
    assert sorted(p["database"] for p in aws.invocations) == sorted(NAMES)
    assert all(p["phase"] == "expand" for p in aws.invocations)
    for result in aws.results:  # each target held the contract version back, for itself
        assert result["ok"] and result["status"] == "applied"
        assert [h["version"] for h in result["held"]] == [2]
    for name in NAMES:
        assert history(dsns[name]) == [(1, False)]
        assert columns(dsns[name]) == ["id", "name", "email"]
    assert expand.output["counts"]["applied"] == len(NAMES)

    expanded = len(aws.invocations)
    contract = machine.run(
        {"action": "migrate", "phase": "contract", "databases": "*", "canary": CANARY}
    )
    assert contract.status == "SUCCEEDED", contract.cause
    later = aws.invocations[expanded:]
    assert later[0]["database"] == CANARY and all(p["phase"] == "contract" for p in later)
    for name in NAMES:
        assert history(dsns[name]) == [(1, False), (2, False)]
        assert columns(dsns[name]) == ["id", "email"]


def test_a_held_canary_stops_the_contract_before_any_other_database(
    fleet: tuple[Aws, StateMachine, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    aws, machine, dsns = fleet
    lam = boto3.client("lambda", region_name=REGION)
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("app.py", "def handler(e, c):\n    return 1\n")
    lam.create_function(
        FunctionName="api", Runtime="python3.12", Role=aws.role_arn, Handler="app.handler",
        Code={"ZipFile": code.getvalue()},
    )  # fmt: skip
    lam.publish_version(FunctionName="api")
    lam.update_function_configuration(FunctionName="api", Description="release 2")
    lam.publish_version(FunctionName="api")
    arn = lam.create_alias(
        FunctionName="api", Name="live", FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    )["AliasArn"]  # fmt: skip
    monkeypatch.setenv("PATCHER_RELEASE_ALIAS", arn)
    execution = machine.run(
        {
            "action": "migrate", "phase": "contract", "databases": "*", "canary": CANARY,
            "max_release_waits": 0,
        }
    )  # fmt: skip
    assert (execution.status, execution.error) == ("FAILED", "CanaryFailed")
    failures = execution.cause_json["failures"]
    assert [(f["database"], f["error"]["type"]) for f in failures] == [(CANARY, "ReleaseHeld")]
    assert [p["database"] for p in aws.invocations] == [CANARY]
    assert [r["status"] for r in aws.results] == ["held"]
    for name in NAMES:
        assert "schema_migrations" not in tables(dsns[name]) or history(dsns[name]) == []
        assert columns(dsns[name]) == ["id", "name"]
