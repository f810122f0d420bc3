"""Secrets and scope: no password, token or secret content in any result or log line (the
suite-wide leak scan in conftest.py checks every test; these tests aim at the likeliest leaks),
and a payload can never choose the source, the database, the schema or the table."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from patcher.aws.handler import lambda_handler
from patcher.cli.main import main
from tests.faults.faultkit import (
    DB_PASSWORD,
    SECRETS,
    FakeContext,
    LeakScan,
    OwnCluster,
    closed_port,
    find_leaks,
)
from tests.fixtures.engine import MigrationDir, tables


def test_the_leak_scan_catches_a_leak() -> None:
    """The scan every test of this suite runs under can itself fail."""
    assert find_leaks(f"error: password {DB_PASSWORD} refused") == [DB_PASSWORD]
    scan = LeakScan()
    scan.add(json.dumps({"error": {"message": f"token {SECRETS[2]}"}}))
    with pytest.raises(AssertionError, match="secret"):
        scan.check()


def handler_env(monkeypatch: pytest.MonkeyPatch, source: Path, **env: str) -> None:
    for name in ("PATCHER_DB_SECRET_ARN", "PATCHER_DATABASE_URL", "PATCHER_SCHEMA",
                 "PATCHER_TABLE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATCHER_SOURCE", str(source))
    for name, value in env.items():
        monkeypatch.setenv(name, value)


BROKEN_URLS = [
    "postgresql://app:{pw}@[unterminated/db",  # libpq quotes the whole URI back
    "postgresql://app:{pw}%zz@127.0.0.1:5432/db",  # ...or the token it choked on
    "postgresql://app:{pw}@127.0.0.1:notaport/db",
    "postgresql://app@127.0.0.1:{port}/db?password={pw}&sslmode=bogus",
    "host=127.0.0.1 port={port} user=app password='{pw} with spaces' dbname",
    "postgresql://app:{pw}@127.0.0.1:{port}/db",  # refused connection
]


@pytest.mark.parametrize("template", BROKEN_URLS)
def test_a_broken_database_url_never_echoes_its_password(
    template: str, mdir: MigrationDir, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    url = template.format(pw=DB_PASSWORD, port=closed_port())
    handler_env(monkeypatch, mdir.path, PATCHER_DATABASE_URL=url)
    monkeypatch.setenv("PATCHER_CONNECT_BUDGET_SECONDS", "0")  # a refused port: one attempt
    result = lambda_handler({"action": "migrate"}, FakeContext())
    assert result["status"] == "failed" and result["error"]["type"] == "DatabaseUnavailable"
    assert DB_PASSWORD not in json.dumps(result)
    for as_json in (True, False):  # the CLI, both renderings
        args = ["migrate", "--source", str(mdir.path), "--database-url", url]
        assert main([*args, "--json"] if as_json else args) == 1
        out = capsys.readouterr()
        assert find_leaks(out.out + out.err) == [], out


def test_a_secrets_manager_secret_never_shows_in_results_or_logs(
    aws: str, own_cluster: OwnCluster, own_db: str, mdir: MigrationDir,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    client = boto3.client("secretsmanager", endpoint_url=aws, region_name="us-east-1")
    dbname = psycopg.conninfo.conninfo_to_dict(own_db)["dbname"]
    secret = {"engine": "postgres", "host": "127.0.0.1", "port": int(own_cluster.port),
              "username": "app", "password": DB_PASSWORD, "dbname": dbname}  # fmt: skip
    good = client.create_secret(Name=f"db-{uuid.uuid4().hex}", SecretString=json.dumps(secret))
    bad_secret = {**secret, "dbname": "no_such_database"}
    bad = client.create_secret(Name=f"db-{uuid.uuid4().hex}", SecretString=json.dumps(bad_secret))
    results: list[dict[str, Any]] = []
    for arn in (bad["ARN"], good["ARN"]):
        handler_env(monkeypatch, mdir.path, PATCHER_DB_SECRET_ARN=arn)
        results.append(lambda_handler({"action": "migrate"}, FakeContext()))
    failed, applied = results
    assert failed["error"]["type"] == "DatabaseUnavailable"
    assert "no_such_database" in failed["error"]["message"]
    assert applied["status"] == "applied" and tables(own_db) >= {"a"}
    printed = capsys.readouterr()
    everything = json.dumps(results) + printed.out + printed.err
    assert printed.out, "the handler logs to stdout: the scan must have something to read"
    for arn in (bad["ARN"], good["ARN"]):
        assert arn not in everything
    assert json.dumps(secret) not in everything and find_leaks(everything) == []


SCOPE_KEYS = [
    "source", "database", "database_url", "schema", "table", "PATCHER_SOURCE",
    "PATCHER_DATABASE_URL", "PATCHER_SCHEMA", "PATCHER_TABLE", "bucket", "secret_arn",
    "db_secret_arn", "expected_bucket_owner", "lock_timeout",
]  # fmt: skip


@pytest.mark.parametrize("key", SCOPE_KEYS)
def test_a_payload_cannot_choose_source_database_schema_or_table(
    key: str, pg_dsn: str, mdir: MigrationDir, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "1_evil.up.sql").write_text("CREATE TABLE evil (id int);")
    handler_env(monkeypatch, mdir.path, PATCHER_DATABASE_URL=pg_dsn)
    attempts: list[Any] = []
    real_connect = psycopg.connect
    monkeypatch.setattr(psycopg, "connect", lambda *a, **k: attempts.append(a) or real_connect(
        *a, **k))  # fmt: skip
    values = {"source": str(evil), "database_url": pg_dsn, "schema": "evil", "table": "evil"}
    for payload in (
        {"action": "migrate", key: values.get(key, str(evil))},
        {"action": "migrate", key.upper(): "evil"},
        {"action": "migrate", "dry_run": {key: "evil"}},
        {"action": {"action": "migrate", key: "evil"}},
    ):
        result = lambda_handler(payload, FakeContext())
        assert result["status"] == "invalid" and result["error"]["type"] == "InvalidRequest"
    first = lambda_handler({"action": "migrate", key: "x"}, FakeContext())
    if key == "table":  # adopt's key: the other tool's history table to read, never ours
        assert "for adopt only" in first["error"]["message"]
    elif key == "database":  # a payload key since SPEC 8: only a PATCHER_TARGETS name, none here
        assert "PATCHER_TARGETS is not set" in first["error"]["message"]
    else:
        assert f"unknown key '{key}'" in first["error"]["message"]
        assert "come from configuration" in first["error"]["message"]
    assert attempts == [] and tables(pg_dsn) == set()
    ok = lambda_handler({"action": "migrate"}, FakeContext())  # the configured ones, only
    assert ok["status"] == "applied" and tables(pg_dsn) >= {"a"} and "evil" not in tables(pg_dsn)
