"""The release gate (SPEC 11) against moto's Lambda aliases (RoutingConfig) and real
PostgreSQL: expand records the live version, contract waits while the alias still routes to it
or to two versions, and runs once the shift is complete; unreadable or malformed aliases are
a ConfigError with nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from patcher.app.config import load_config
from patcher.app.release import alias_reader
from patcher.core.errors import ConfigError
from tests.fixtures.engine import MigrationDir, make_runner, query
from tests.fixtures.lambda_alias import api_function

REGION = "us-east-1"


@pytest.fixture
def lam(aws_env: str) -> Iterator[Any]:
    """moto's Lambda with function api, versions 1 and 2, alias live -> 1."""
    with mock_aws():
        client, _arn = api_function(REGION)
        yield client


def _route(lam: Any, version: str, weights: dict[str, float] | None = None) -> None:
    lam.update_alias(
        FunctionName="api", Name="live", FunctionVersion=version,
        RoutingConfig={"AdditionalVersionWeights": weights or {}},
    )  # fmt: skip


def _arn(lam: Any) -> str:
    return str(lam.get_alias(FunctionName="api", Name="live")["AliasArn"])


def _versions(mdir: MigrationDir) -> None:
    mdir.pair("1", "users", "CREATE TABLE users (id bigint PRIMARY KEY, name text);")
    mdir.pair("2", "email", "ALTER TABLE users ADD COLUMN email text;")
    mdir.pair("3", "rename", "ALTER TABLE users RENAME COLUMN name TO full_name;")


def test_moto_reads_routing_config(lam: Any) -> None:
    _route(lam, "1", {"2": 0.25})
    read = alias_reader(_arn(lam))()
    assert read == {"alias": _arn(lam), "version": "1", "weights": {"2": 0.25}}


def test_expand_records_the_live_version_and_contract_waits_for_the_shift(
    lam: Any, pg_dsn: str, mdir: MigrationDir
) -> None:
    _versions(mdir)
    run = make_runner(pg_dsn, mdir.path, release_alias=_arn(lam))
    assert run("migrate", target=1)["ok"]
    expand = run("migrate", phase="expand")
    assert expand["ok"] and [m["version"] for m in expand["migrations"]] == [2]
    assert expand["release"] == {
        "alias": _arn(lam), "version": "1", "weights": {}, "held_since_version": "1"
    }  # fmt: skip
    logged = query(pg_dsn, "SELECT version, outcome, error FROM schema_migrations_log "
                   "WHERE outcome = 'held'")  # fmt: skip
    assert logged == [(3, "held", f"release alias {_arn(lam)} routed to version 1")]
    run("migrate", phase="expand")  # a second expand records nothing new
    assert len(query(pg_dsn, "SELECT 1 FROM schema_migrations_log WHERE outcome = 'held'")) == 1

    still = run("migrate", phase="contract")  # the alias still routes to the version held on
    assert still["ok"] and still["status"] == "held"
    assert still["release"]["held_since_version"] == "1"
    assert [m["version"] for m in still["pending"]] == [3]
    assert query(pg_dsn, "SELECT max(version) FROM schema_migrations") == [(2,)]

    _route(lam, "1", {"2": 0.1})  # the gradual shift: two versions serve
    shifting = run("migrate", phase="contract", dry_run=True)
    assert shifting["status"] == "held" and shifting["release"]["weights"] == {"2": 0.1}
    assert any("routes to versions 1 and 2" in w for w in shifting["warnings"])

    _route(lam, "2")  # shift complete
    done = run("migrate", phase="contract")
    assert done["ok"] and done["status"] == "applied", done
    assert [m["version"] for m in done["migrations"]] == [3]
    assert query(pg_dsn, "SELECT max(version) FROM schema_migrations") == [(3,)]


def test_an_alias_that_moves_back_during_the_run_stops_before_the_contract_version(
    lam: Any, pg_dsn: str, mdir: MigrationDir
) -> None:
    _versions(mdir)
    reads = iter([{"version": "2", "weights": {}}, {"version": "2", "weights": {"1": 0.5}}])

    def gate() -> dict[str, Any]:
        return {"alias": "arn", **next(reads)}

    run = make_runner(pg_dsn, mdir.path)
    assert run("migrate", target=1)["ok"]
    result = run("migrate", phase="contract", tuning={"release_gate": gate})
    assert result["ok"] and result["status"] == "held"
    assert [m["version"] for m in result["migrations"]] == [2]  # the expand version ran
    assert [m["version"] for m in result["pending"]] == [3]
    assert query(pg_dsn, "SELECT max(version) FROM schema_migrations") == [(2,)]


def test_a_missing_alias_is_a_config_error_and_nothing_changes(
    lam: Any, pg_dsn: str, mdir: MigrationDir
) -> None:
    _versions(mdir)
    missing = _arn(lam).replace(":live", ":gone")
    run = make_runner(pg_dsn, mdir.path, release_alias=missing)
    assert run("migrate", target=1)["ok"]
    for phase in ("expand", "contract"):
        result = run("migrate", phase=phase)
        assert result["status"] == "failed" or result["status"] == "invalid", result
        assert result["error"]["type"] == "ConfigError"
        assert "does not exist" in result["error"]["message"]
    assert query(pg_dsn, "SELECT max(version) FROM schema_migrations") == [(1,)]


def test_access_denied_says_which_grant_is_missing() -> None:
    class Denied:
        def get_alias(self, **_: Any) -> None:
            error = {"Error": {"Code": "AccessDeniedException", "Message": "no"}}
            raise ClientError(error, "GetAlias")  # type: ignore[arg-type]

    arn = "arn:aws:lambda:us-east-1:123456789012:function:api:live"
    with pytest.raises(ConfigError, match="grant this function lambda:GetAlias"):
        alias_reader(arn, client=Denied())()


@pytest.mark.parametrize(
    "value",
    [
        "live",
        "arn:aws:lambda:us-east-1:123456789012:function:api",
        "arn:aws:lambda:us-east-1:123456789012:function:api:7",
        "arn:aws:lambda:us-east-1:123456789012:function:api:$LATEST",
        "arn:aws:s3:::bucket",
    ],
)
def test_a_malformed_alias_is_a_config_error(value: str) -> None:
    env = {"PATCHER_DATABASE_URL": "postgresql://x/y", "PATCHER_RELEASE_ALIAS": value}
    with pytest.raises(ConfigError, match="PATCHER_RELEASE_ALIAS"):
        load_config(env)
