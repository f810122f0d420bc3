"""What a fleet run writes down holds no secret and no row value (issue 28 item 8).

Three targets through moto's Step Functions interpreter and the real handler (tests/e2e/sfnkit):
the canary and a third migrate, the second fails on a unique violation whose DETAIL quotes a
row. The root logger is at DEBUG. Rendered (``repr``, ``str``, JSON) and searched for the
secrets' passwords and the row value:

- every log record of the process (patcher's, Powertools', the SDK's), but moto's own and its
  server's (they stand in for AWS, which runs none of this code in the function's process),
  and everything printed (EMF metrics, the task's output);
- every result the function returned to the state machine, every summary, the execution's
  output, error and cause;
- every object in the results bucket: ResultWriter's manifest and result files, and the failed
  target's ``failed/<database>.json``.

With the stack's ResultsKeepDetail (``PATCHER_RESULTS_KEEP_DETAIL=true``) the stored result keeps
DETAIL, and the same search finds the row value there (the search can fail).
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest

from tests.e2e.sfnkit import REGION, Aws, Execution, sfn_world
from tests.fixtures.postgres import PgServer

pytestmark = pytest.mark.slow  # whole executions, seconds each: CI runs them, test-fast not

ROW_VALUE = "dora.private.5e17@example.com"
NAMES = ("db0", "db1", "db2")
NOT_OURS = ("moto", "werkzeug")  # the AWS stand-ins' own loggers


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []
        self.lines = io.StringIO()

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(NOT_OURS):
            self.records.append(record)


@pytest.fixture
def root_debug(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Records]:
    """The root logger at DEBUG, every record kept, and the function's JSON log lines (the
    Powertools handler kept the stdout it saw at import) in ``records.lines``."""
    from patcher.aws import handler

    root = logging.getLogger()
    level, records = root.level, _Records()
    monkeypatch.setattr(handler.logger.registered_handler, "stream", records.lines)
    root.addHandler(records)
    root.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.setLevel(level)
        root.removeHandler(records)


@pytest.fixture
def fleet(
    monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, pg_server: PgServer
) -> Iterator[tuple[Aws, dict[str, str], dict[str, str]]]:
    """The world, three databases and their secrets, each with a distinctive password (the
    test cluster trusts local connections: it is sent, not checked)."""
    world = sfn_world(monkeypatch, s3_endpoint)
    aws = next(world)
    created = [pg_server.create_database() for _ in NAMES]
    dsns = {name: pg_server.dsn_for(db) for name, db in zip(NAMES, created, strict=True)}
    passwords = {name: f"pw-{os.urandom(10).hex()}" for name in NAMES}
    secrets = boto3.client("secretsmanager", region_name=REGION)
    targets = {}
    for name, dsn in dsns.items():
        conninfo = psycopg.conninfo.conninfo_to_dict(dsn)
        secret = {
            "engine": "postgres", "host": conninfo["host"], "port": int(str(conninfo["port"])),
            "username": conninfo["user"], "password": passwords[name],
            "dbname": conninfo["dbname"],
        }  # fmt: skip
        targets[name] = secrets.create_secret(
            Name=f"fleet/{name}", SecretString=json.dumps(secret)
        )["ARN"]
    monkeypatch.setenv("PATCHER_TARGETS", json.dumps(targets))
    aws.put(
        "0001_people.up.sql",
        "CREATE TABLE IF NOT EXISTS people (id int PRIMARY KEY, email text UNIQUE);\n",
    )
    aws.put("0002_rows.up.sql", f"INSERT INTO people VALUES (1, '{ROW_VALUE}');\n")
    with psycopg.connect(dsns["db1"], autocommit=True) as conn:  # the row is already there
        conn.execute("CREATE TABLE people (id int PRIMARY KEY, email text UNIQUE)")
        conn.execute("INSERT INTO people VALUES (7, %s)", (ROW_VALUE,))
    yield aws, targets, passwords
    next(world, None)
    for db in created:
        pg_server.drop_database(db)


def _stored_objects(aws: Aws) -> dict[str, str]:
    s3 = boto3.client("s3", region_name=REGION)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=aws.results_bucket).get("Contents", [])]
    return {
        key: s3.get_object(Bucket=aws.results_bucket, Key=key)["Body"].read().decode()
        for key in keys
    }


def _renderings(
    aws: Aws, execution: Execution, records: list[logging.LogRecord], printed: str
) -> Iterator[tuple[str, str]]:
    objects: list[tuple[str, Any]] = [
        *((f"result {i}", r) for i, r in enumerate(aws.results)),
        *((f"summary {i}", s) for i, s in enumerate(aws.summaries)),
        ("execution", (execution.output, execution.error, execution.cause)),
        *(_stored_objects(aws).items()),
        ("printed", printed),
    ]
    for record in records:
        where = f"log record {record.name} {record.levelname}"
        objects.append((where, (record.getMessage(), vars(record))))
    for where, obj in objects:
        yield f"repr of {where}", repr(obj)
        yield f"str of {where}", str(obj)
        yield f"json of {where}", json.dumps(obj, default=str)


def _run(
    aws: Aws, targets: dict[str, str], records: _Records, capsys: pytest.CaptureFixture[str]
) -> tuple[Execution, list[tuple[str, str]]]:
    execution = aws.state_machine(targets).run({"action": "migrate", "databases": "*"})
    assert (execution.status, execution.error) == ("FAILED", "FleetFailed")
    failed = [r for r in aws.results if not r["ok"]]
    assert [(r["error"]["type"], r["error"]["sqlstate"]) for r in failed] == [
        ("MigrationFailed", "23505")
    ]
    captured = capsys.readouterr()
    printed = captured.out + captured.err + records.lines.getvalue()
    rendered = list(_renderings(aws, execution, records.records, printed))
    assert logging.getLogger().level == logging.DEBUG and records.records
    assert '"message":"run finished"' in records.lines.getvalue()  # the function's log lines
    assert "Logging error" not in printed
    return execution, rendered


def test_a_fleet_stores_and_logs_no_secret_and_no_row_value(
    fleet: tuple[Aws, dict[str, str], dict[str, str]],
    root_debug: _Records,
    capsys: pytest.CaptureFixture[str],
) -> None:
    aws, targets, passwords = fleet
    execution, rendered = _run(aws, targets, root_debug, capsys)
    needles = [ROW_VALUE, *passwords.values()]
    leaks = [f"{where}: {n!r}" for where, text in rendered for n in needles if n in text]
    assert not leaks, "leaked:\n" + "\n".join(leaks[:20])
    stored = aws.failed_result(execution.name, "db1")
    error = stored["result"]["error"]
    assert "detail" not in error and "ResultsKeepDetail" in error["detail_hidden"]
    assert "duplicate key value violates unique constraint" in error["message"]
    assert "0002_rows.up.sql line 1" in error["message"]  # still says where
    assert stored["error"]["message"] == error["message"]
    # The audit log keeps the whole message for whoever may read the database.
    with psycopg.connect(aws_dsn(targets, "db1")) as conn:
        logged = conn.execute("SELECT error FROM schema_migrations_log WHERE outcome = 'failed'")
        assert ROW_VALUE in str(logged.fetchall())


def aws_dsn(targets: dict[str, str], name: str) -> str:
    secret = json.loads(
        boto3.client("secretsmanager", region_name=REGION).get_secret_value(SecretId=targets[name])[
            "SecretString"
        ]
    )
    return psycopg.conninfo.make_conninfo(
        host=secret["host"], port=str(secret["port"]), user=secret["username"],
        dbname=secret["dbname"],
    )  # fmt: skip


def test_results_keep_detail_keeps_the_row_value_in_what_is_stored(
    fleet: tuple[Aws, dict[str, str], dict[str, str]],
    root_debug: _Records,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATCHER_RESULTS_KEEP_DETAIL", "true")
    aws, targets, passwords = fleet
    execution, rendered = _run(aws, targets, root_debug, capsys)
    stored = aws.failed_result(execution.name, "db1")
    assert ROW_VALUE in stored["result"]["error"]["detail"]
    assert any(ROW_VALUE in text for where, text in rendered if "failed/db1.json" in where)
    assert not [w for w, text in rendered for p in passwords.values() if p in text]
    # The log lines still leave it out (the log level is not DEBUG).
    assert not [
        w for w, text in rendered if w.endswith("stackflowpatcher INFO") and ROW_VALUE in text
    ]
