"""End-to-end fixtures: ``lambda_handler(event, context)`` against real PostgreSQL and moto S3.

The handler runs exactly as deployed: configuration only from the environment (set here with
monkeypatch), its own S3 client made the standard boto3 way (``AWS_ENDPOINT_URL_S3`` points at
the moto server), a Lambda-like context from ``patcher.dev.devrun``. ``handler_s3`` lets a test
hook the client the handler makes (count or fail requests) without replacing it.
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from botocore.client import BaseClient

from patcher.sources.s3 import _CLIENTS, S3Source
from tests.e2e.e2ekit import PREFIX, HandlerS3, LambdaEnv, Secret
from tests.fixtures.lambda_alias import api_function
from tests.fixtures.s3 import S3Bucket


@pytest.fixture(autouse=True)
def _fresh_parameters_cache() -> Iterator[None]:
    """Powertools caches secrets in a module-level dict: no test sees another's secret."""
    parameters.clear_caches()
    yield
    parameters.clear_caches()


@pytest.fixture
def lambda_env(
    monkeypatch: pytest.MonkeyPatch, s3_bucket: S3Bucket, pg_dsn: str, fast_retries: None
) -> LambdaEnv:
    for name in list(os.environ):
        if name.startswith(("PATCHER_", "POWERTOOLS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PATCHER_SOURCE", f"s3://{s3_bucket.name}/{PREFIX}")
    monkeypatch.setenv("PATCHER_DATABASE_URL", pg_dsn)
    monkeypatch.setenv("PATCHER_LOCK_WAIT_SECONDS", "5")
    return LambdaEnv(s3_bucket, pg_dsn)


@pytest.fixture
def handler_s3(monkeypatch: pytest.MonkeyPatch) -> HandlerS3:
    """Let the handler build its client as deployed, then register botocore event hooks."""
    spy = HandlerS3()
    make_client = S3Source._make_client

    def record(event_name: str, params: dict[str, Any], **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        spy.calls[operation] += 1
        spy.keys.append((operation, params.get("Key") or params.get("Prefix") or ""))

    def instrumented(self: S3Source) -> Any:
        _CLIENTS.clear()  # a client per invocation, so that its hooks are this invocation's
        client = make_client(self)
        client.meta.events.register("provide-client-params.s3", record)
        for hook in spy.hooks:
            hook(client)
        spy.clients.append(client)
        return client

    monkeypatch.setattr(S3Source, "_make_client", instrumented)
    return spy


@pytest.fixture
def db_secret(
    lambda_env: LambdaEnv, monkeypatch: pytest.MonkeyPatch, aws_env: str
) -> Iterator[Secret]:
    """An RDS-format secret in moto's Secrets Manager for the test database, used instead of
    PATCHER_DATABASE_URL. The test cluster trusts local connections, so the (distinctive)
    password is sent but not checked: enough to prove it never leaks."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", aws_env)
    url = urlsplit(lambda_env.dsn)
    password = "pw-" + os.urandom(12).hex()
    client = boto3.client("secretsmanager", endpoint_url=aws_env)
    arn = client.create_secret(
        Name=f"stackflow/db/{url.path.strip('/')}",
        SecretString=json.dumps(
            {
                "engine": "postgres",
                "host": url.hostname,
                "port": url.port,
                "username": url.username,
                "password": password,
                "dbname": url.path.strip("/"),
            }
        ),
    )["ARN"]
    monkeypatch.delenv("PATCHER_DATABASE_URL")
    monkeypatch.setenv("PATCHER_DB_SECRET_ARN", arn)
    calls: collections.Counter[str] = collections.Counter()
    api_call = BaseClient._make_api_call

    def counting(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "secretsmanager":
            calls[operation] += 1
        return api_call(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    yield Secret(arn, password, calls)
    client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


@pytest.fixture
def api_alias(lambda_env: LambdaEnv, aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The application function on moto's Lambda: versions 1 and 2, alias ``live`` -> 1;
    the handler reads it (PATCHER_RELEASE_ALIAS) through the same moto server."""
    for service in ("LAMBDA", "IAM"):
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", aws_env)
    lam, arn = api_function("us-east-1")
    monkeypatch.setenv("PATCHER_RELEASE_ALIAS", arn)
    return lam
