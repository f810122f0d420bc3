"""The handler with PATCHER_TARGETS: the payload's ``database`` picks the target's secret."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import boto3
import pytest

from tests.e2e.e2ekit import LambdaEnv
from tests.fixtures.engine import history, tables
from tests.fixtures.postgres import PgServer


@pytest.fixture
def two_targets(
    lambda_env: LambdaEnv, pg_server: PgServer, monkeypatch: pytest.MonkeyPatch, aws_env: str
) -> Iterator[dict[str, str]]:
    """Targets "blue" (the fixture's database) and "green" (a second one), as RDS secrets."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", aws_env)
    green = pg_server.create_database()
    dsns = {"blue": lambda_env.dsn, "green": pg_server.dsn_for(green)}
    client = boto3.client("secretsmanager", endpoint_url=aws_env)
    arns = {}
    for name, dsn in dsns.items():
        url = urlsplit(dsn)
        secret = {"host": url.hostname, "port": url.port, "username": url.username,
                  "password": "unused", "dbname": url.path.strip("/")}  # fmt: skip
        arns[name] = client.create_secret(Name=f"fleet/{name}", SecretString=json.dumps(secret))[
            "ARN"
        ]
    monkeypatch.delenv("PATCHER_DATABASE_URL")
    monkeypatch.setenv("PATCHER_TARGETS", json.dumps(arns))
    lambda_env.put("0001_t.up.sql", "CREATE TABLE t (id int);\n")
    yield dsns
    pg_server.drop_database(green)


def test_database_picks_the_target(lambda_env: LambdaEnv, two_targets: dict[str, str]) -> None:
    result = lambda_env.invoke({"action": "migrate", "database": "green"})
    assert (result["ok"], result["status"]) == (True, "applied")
    assert history(two_targets["green"]) == [(1, False)]
    assert "schema_migrations" not in tables(two_targets["blue"])


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"action": "migrate"}, "database is required: 2 targets are configured (blue, green)"),
        (
            {"action": "migrate", "database": "red"},
            "unknown database 'red': the configured targets are blue, green",
        ),
        ({"action": "migrate", "database": ""}, "database"),
        ({"action": "migrate", "database": 7}, "database"),
    ],
)
def test_a_bad_database_is_refused_and_nothing_runs(
    lambda_env: LambdaEnv, two_targets: dict[str, str], payload: dict[str, object], needle: str
) -> None:
    result = lambda_env.invoke(payload)
    assert (result["ok"], result["status"]) == (False, "invalid")
    assert result["error"]["type"] == "InvalidRequest"
    assert needle in result["error"]["message"]
    assert not {"t", "schema_migrations"} & (
        tables(two_targets["blue"]) | tables(two_targets["green"])
    )


def test_database_without_targets_is_refused(lambda_env: LambdaEnv) -> None:
    result = lambda_env.invoke({"action": "status", "database": "blue"})
    assert (result["status"], result["error"]["type"]) == ("invalid", "InvalidRequest")
    assert "PATCHER_TARGETS is not set" in result["error"]["message"]
