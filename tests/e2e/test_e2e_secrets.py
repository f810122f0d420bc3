"""Credentials from (moto) Secrets Manager through Powertools Parameters, cached while warm."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.e2e.e2ekit import LambdaEnv, Secret, event
from tests.fixtures.engine import query


def test_secret_is_read_once_per_warm_container(lambda_env: LambdaEnv, db_secret: Secret) -> None:
    lambda_env.put("0001_a.up.sql", "CREATE TABLE a (id int);\n")
    first = lambda_env.invoke(event("migrate"))
    assert (first["ok"], first["status"]) == (True, "applied")
    assert db_secret.calls == {"GetSecretValue": 1}

    second = lambda_env.invoke(event("status"))  # a warm invocation: the cached secret
    assert second["status"] == "up_to_date"
    assert db_secret.calls == {"GetSecretValue": 1}

    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # a cold start
    assert lambda_env.invoke(event("status"))["ok"]
    assert db_secret.calls == {"GetSecretValue": 2}
    apps = query(lambda_env.dsn, "SELECT DISTINCT request_id FROM schema_migrations_log")
    assert apps == [(first["request_id"],)]


def test_a_failed_connection_forgets_the_cached_secret(
    lambda_env: LambdaEnv, db_secret: Secret, aws_env: str
) -> None:
    """After a rotation the cached password is wrong: the next invocation must read afresh."""
    client = boto3.client("secretsmanager", endpoint_url=aws_env)
    good = client.get_secret_value(SecretId=db_secret.arn)["SecretString"]
    client.put_secret_value(
        SecretId=db_secret.arn, SecretString=json.dumps({**json.loads(good), "port": 9})
    )
    before = db_secret.calls["GetSecretValue"]  # the test's own read counts too
    broken = lambda_env.invoke(event("status"))
    assert (broken["ok"], broken["error"]["type"]) == (False, "DatabaseUnavailable")
    client.put_secret_value(SecretId=db_secret.arn, SecretString=good)
    assert lambda_env.invoke(event("status"))["ok"]
    assert db_secret.calls["GetSecretValue"] == before + 2


@pytest.mark.parametrize(
    ("secret_string", "error_type", "needle"),
    [
        ("not json", "ConfigError", "RDS format"),
        ('{"host": "db", "username": "app"}', "ConfigError", "lacks host, username or password"),
    ],
)
def test_malformed_secrets_are_config_errors(
    lambda_env: LambdaEnv,
    db_secret: Secret,
    aws_env: str,
    secret_string: str,
    error_type: str,
    needle: str,
) -> None:
    client = boto3.client("secretsmanager", endpoint_url=aws_env)
    client.put_secret_value(SecretId=db_secret.arn, SecretString=secret_string)
    result = lambda_env.invoke(event("status"))
    assert (result["ok"], result["status"]) == (False, "invalid")
    assert result["error"]["type"] == error_type and needle in result["error"]["message"]


def test_missing_secret_names_the_code_and_the_permission(
    lambda_env: LambdaEnv, db_secret: Secret, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATCHER_DB_SECRET_ARN", db_secret.arn + "-gone")
    result = lambda_env.invoke(event("migrate"))
    assert (result["ok"], result["status"]) == (False, "failed")
    assert result["error"]["type"] == "DatabaseUnavailable"
    assert "ResourceNotFoundException" in result["error"]["message"]
    assert "secretsmanager:GetSecretValue" in result["error"]["message"]
