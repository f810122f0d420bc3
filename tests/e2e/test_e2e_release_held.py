"""SPEC 11 in the state machine: a contract run the release gate holds (status ``held``, ok
true) waits with bounded backoff and invokes again; through moto's interpreter, the real
handler, moto's Lambda aliases (the application's ``api:live``) and real PostgreSQL."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.e2e.sfnkit import REGION, Aws, sfn_world
from tests.fixtures.engine import history, tables

pytestmark = pytest.mark.slow


def _code(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", text)
    return buf.getvalue()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, pg_dsn: str) -> Iterator[Aws]:
    world = sfn_world(monkeypatch, s3_endpoint)
    aws = next(world)
    monkeypatch.setenv("PATCHER_DATABASE_URL", pg_dsn)
    yield aws
    next(world, None)


@pytest.fixture
def api(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The application: function ``api``, versions 1 and 2, alias ``live`` on 1; the patcher
    function's PATCHER_RELEASE_ALIAS names that alias."""
    lam = boto3.client("lambda", region_name=REGION)
    lam.create_function(
        FunctionName="api", Runtime="python3.12", Role=aws.role_arn, Handler="app.handler",
        Code={"ZipFile": _code("def handler(e, c):\n    return 1\n")},
    )  # fmt: skip
    assert lam.publish_version(FunctionName="api")["Version"] == "1"
    lam.update_function_configuration(FunctionName="api", Description="release 2")
    assert lam.publish_version(FunctionName="api")["Version"] == "2"
    arn = lam.create_alias(FunctionName="api", Name="live", FunctionVersion="1")["AliasArn"]
    monkeypatch.setenv("PATCHER_RELEASE_ALIAS", arn)
    return lam


def _route(lam: Any, version: str, weights: dict[str, float] | None = None) -> None:
    lam.update_alias(
        FunctionName="api", Name="live", FunctionVersion=version,
        RoutingConfig={"AdditionalVersionWeights": weights or {}},
    )  # fmt: skip


def _versions(aws: Aws, dsn: str) -> None:
    """Version 1 applied (the table exists before the change set), 2 expand, 3 contract."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id bigint PRIMARY KEY, name text)")
    aws.put("0001_email.up.sql", "ALTER TABLE users ADD COLUMN email text;\n")
    aws.put("0002_drop.up.sql", "ALTER TABLE users DROP COLUMN name;\n")


def _columns(dsn: str) -> list[str]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'users' "
            "ORDER BY ordinal_position"
        ).fetchall()
    return [r[0] for r in rows]


def test_contract_waits_for_the_alias_shift_then_applies(aws: Aws, api: Any, pg_dsn: str) -> None:
    _versions(aws, pg_dsn)
    machine = aws.state_machine()
    expand = machine.run({"action": "migrate", "phase": "expand"})
    assert expand.status == "SUCCEEDED", expand.cause
    assert expand.output["status"] == "applied"
    assert [h["version"] for h in expand.output["held"]] == [2]
    assert history(pg_dsn) == [(1, False)]

    _route(api, "1", {"2": 0.5})  # the application's gradual shift: two versions serve
    expanded = len(aws.results)

    def shift_after_the_first_hold() -> None:
        while len(aws.results) == expanded:
            time.sleep(0.05)
        _route(api, "2")  # the shift completes

    shifter = threading.Thread(target=shift_after_the_first_hold, daemon=True)
    shifter.start()
    contract = machine.run({"action": "migrate", "phase": "contract", "release_wait_seconds": 1})
    shifter.join(timeout=10)
    assert contract.status == "SUCCEEDED", contract.cause
    statuses = [r["status"] for r in aws.results[expanded:]]
    assert statuses == ["held", "applied"], statuses
    held = aws.results[expanded]
    assert held["ok"] is True and held["release"]["weights"] == {"2": 0.5}
    assert contract.output["status"] == "applied" and contract.output["current_version"] == 2
    assert all(p["phase"] == "contract" for p in aws.invocations[expanded:])
    assert history(pg_dsn) == [(1, False), (2, False)]
    assert _columns(pg_dsn) == ["id", "email"]


def test_a_gate_that_never_opens_fails_as_release_held(aws: Aws, api: Any, pg_dsn: str) -> None:
    _versions(aws, pg_dsn)
    _route(api, "1", {"2": 0.25})
    execution = aws.state_machine().run(
        {
            "action": "migrate", "phase": "contract", "release_wait_seconds": 1,
            "max_release_waits": 2,
        }
    )  # fmt: skip
    assert (execution.status, execution.error) == ("FAILED", "ReleaseHeld")
    cause = execution.cause or ""
    assert "max_release_waits" in cause and ":function:api:live" in cause, cause
    assert 'routes to version 1 weights {"2":0.25} after 2 waits' in cause, cause
    assert [r["status"] for r in aws.results] == ["held"] * 3  # the first try and two waits
    assert _columns(pg_dsn) == ["id", "name"]  # the gate held before anything ran
    stored = aws.failed_result(execution.name, None)
    assert (stored["status"], stored["error"]["type"]) == ("held", "ReleaseHeld")


def test_a_held_dry_run_does_not_wait(aws: Aws, api: Any, pg_dsn: str) -> None:
    _versions(aws, pg_dsn)
    _route(api, "1", {"2": 0.25})
    execution = aws.state_machine().run(
        {"action": "migrate", "phase": "contract", "dry_run": True, "release_wait_seconds": 30}
    )
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["status"] == "held" and len(aws.invocations) == 1
    assert "schema_migrations" not in tables(pg_dsn) and "name" in _columns(pg_dsn)
