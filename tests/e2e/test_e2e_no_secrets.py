"""No password, secret or IAM token in anything the handler logs, raises or returns (issue 13).

``lambda_handler`` runs through every kind of log line and error path: migrations, a dry run
with verify, rollback and status as a role with a password; a unique violation whose DETAIL
quotes a row; the advisory lock held by another run and a statement that hits lock_timeout;
URLs whose libpq error echoes them (a bad percent escape, an unclosed IPv6 bracket), a closed
port, a wrong password, a missing database; refused payloads and configurations; a secret in
(moto) Secrets Manager, rotated to a dead port and to malformed JSON; RDS IAM auth.

What is rendered, each with ``repr()``, ``str()`` and ``json.dumps(default=str)``:

- every log record, from the Powertools logger and any other (a handler on it and on the root
  logger), each of its ``extra`` fields apart, and the JSON lines the Powertools handler
  writes; everything else written to stdout/stderr (EMF metrics);
- every ``Config`` the handler loads (``patcher.aws.handler.load_config`` wrapped);
- every ``PatcherError`` and ``StatementFailed`` made during the run (their ``__init__``
  wrapped), the Outcome's error (``patcher.app.commands.run`` wrapped), each with its ``__cause__``
  and ``__context__`` chain (suppressed or not), each link's attributes (a driver error's
  ``pgconn``, a decoder error's ``doc``) and the traceback a logger would print;
- every result the handler returns.

The test cluster trusts local connections, so a role's password is sent but not checked; the
URLs libpq echoes, and a token libpq never sees, cover what a checking server would be given.
``test_the_checker_finds_a_planted_secret`` shows each channel is looked at.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import psycopg
import psycopg.conninfo
import psycopg.sql
import pytest

import patcher.app.commands
import patcher.aws.handler
import patcher.db.iam
from patcher.app.config import Config
from patcher.aws import handler
from patcher.core.errors import PatcherError, StatementFailed
from patcher.core.quiet_logs import SDK_LOGGERS, pin_sdk_loggers
from patcher.db.advisory_lock import lock_key
from patcher.dev.devrun import LambdaContext
from patcher.engine.outcome import Outcome
from tests.e2e.e2ekit import LambdaEnv, Secret, event
from tests.fixtures.s3 import FAKE_SECRET
from tests.fixtures.tls import make_ca

ROW_VALUE = "carol.private.9d41@example.com"
# What an RDS IAM auth token (a presigned URL) or an AWS key looks like, whoever made it.
IAM_LIKE = re.compile(
    r"X-Amz-(Signature|Credential|Security-Token)=|Action=connect|AKIA[0-9A-Z]{16}", re.I
)
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


# --------------------------------------------------------------------------- the capture


@dataclass
class Capture:
    """Everything the handler logged, loaded, raised and returned during a test."""

    stream: io.StringIO
    capsys: pytest.CaptureFixture[str]
    records: list[logging.LogRecord] = field(default_factory=list)
    configs: list[Config] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    printed: list[str] = field(default_factory=list)

    def invoke(self, payload: Any) -> dict[str, Any]:
        result = handler.lambda_handler(payload, LambdaContext())
        self.results.append(result)
        return result

    def lines(self) -> list[dict[str, Any]]:
        text = self.stream.getvalue()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def run_finished(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("message") == "run finished"]

    def objects(self) -> list[tuple[str, Any]]:
        """(where it was seen, the object) for everything that must carry no credential."""
        found: list[tuple[str, Any]] = []
        for i, record in enumerate(self.records):
            where = f"log record {i} ({record.getMessage()!r})"
            found += [(where, record.getMessage()), (f"{where} args", record.args)]
            extras = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}
            found += [(f"{where} extra {k!r}", v) for k, v in extras.items()]
            if record.exc_info and record.exc_info[1] is not None:
                found.append((f"{where} exc_info", record.exc_info[1]))
        found += [(f"JSON log line {i}", line) for i, line in enumerate(self.lines())]
        found.append(("the log stream", self.stream.getvalue()))
        found += [(f"stdout/stderr {i}", text) for i, text in enumerate(self.printed)]
        found += [(f"Config {i}", config) for i, config in enumerate(self.configs)]
        raised = [o.error for o in self.outcomes if o.error is not None] + self.errors
        for i, exc in enumerate(raised):
            for depth, link in enumerate(_chain(exc)):
                where = f"exception {i} {type(exc).__name__}, chain link {depth}"
                found += [
                    (where, link),
                    (f"{where} attributes", vars(link)),  # pgconn, doc
                    (f"{where} args", link.args),
                ]
            found.append((f"exception {i} traceback", "".join(traceback.format_exception(exc))))
        found += [(f"result {i}", result) for i, result in enumerate(self.results)]
        return found

    def renderings(self) -> Iterator[tuple[str, str]]:
        for where, obj in self.objects():
            yield f"repr of {where}", repr(obj)
            yield f"str of {where}", str(obj)
            yield f"json of {where}", json.dumps(obj, default=str)

    def assert_clean(self, *secrets: str) -> int:
        """No rendering holds any of ``secrets`` or an IAM-like token; returns how many objects
        were looked at (a test checks it is not nothing)."""
        needles = [s for s in secrets if s]
        assert needles, "nothing to look for"
        self.printed += self.capsys.readouterr()  # EMF metrics and anything else printed
        assert self.records and self.results, "the scenario logged or returned nothing"
        leaks = [
            f"{where}: {needle!r}"
            for where, text in self.renderings()
            for needle in needles
            if needle in text
        ]
        leaks += [
            f"{where}: IAM-like {m[0]!r}"
            for where, text in self.renderings()
            if (m := IAM_LIKE.search(text))
        ]
        assert not leaks, "credentials leaked:\n" + "\n".join(leaks[:20])
        return len(self.objects())


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, its cause, the cause's cause... and the contexts (what was being handled when
    each was raised), suppressed or not."""
    links: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in links):
        links.append(current)
        # ``from None`` hides the context from a traceback, not from whoever walks it
        current = current.__cause__ or current.__context__
    return links


class _Records(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.NOTSET)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if all(record is not seen for seen in self.into):  # on two loggers: once
            self.into.append(record)


@pytest.fixture
def capture(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Capture]:
    cap = Capture(io.StringIO(), capsys)
    monkeypatch.setattr(handler.logger.registered_handler, "stream", cap.stream)
    records = _Records(cap.records)
    loggers = [logging.getLogger(handler.logger.name), logging.getLogger()]
    for logger in loggers:
        logger.addHandler(records)

    load_config = patcher.aws.handler.load_config
    run = patcher.app.commands.run
    auth_token = patcher.db.iam.auth_token
    options = patcher.app.commands._options

    def loading(*args: Any, **kwargs: Any) -> Config:
        config = load_config(*args, **kwargs)
        cap.configs.append(config)
        return config

    def running(*args: Any, **kwargs: Any) -> Outcome:
        outcome = run(*args, **kwargs)
        cap.outcomes.append(outcome)
        return outcome

    def token(*args: Any, **kwargs: Any) -> str:
        made = auth_token(*args, **kwargs)
        cap.tokens.append(made)
        return made

    def quick_retries(*args: Any, **kwargs: Any) -> Any:
        """lock_timeout retries after 20, 40, 80 ms instead of 1, 2, 4 s (no env setting)."""
        return replace(options(*args, **kwargs), lock_retry_backoff_seconds=0.02)

    def recording(cls: type[BaseException]) -> None:
        init = cls.__init__

        def made(self: BaseException, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            cap.errors.append(self)

        monkeypatch.setattr(cls, "__init__", made)

    monkeypatch.setattr(patcher.aws.handler, "load_config", loading)
    monkeypatch.setattr(patcher.app.commands, "run", running)
    monkeypatch.setattr(patcher.db.iam, "auth_token", token)
    monkeypatch.setattr(patcher.app.commands, "_options", quick_retries)
    recording(PatcherError)
    recording(StatementFailed)
    level = handler.logger.log_level
    try:
        yield cap
    finally:
        handler.logger.setLevel(level)
        for logger in loggers:
            logger.removeHandler(records)


# --------------------------------------------------------------------------- the world


@dataclass
class Role:
    """A login role with a password on the test server, owning nothing but what it creates."""

    name: str
    password: str
    host: str
    port: int
    dbname: str

    def url(self, password: str | None = None, **parts: Any) -> str:
        host, port = parts.get("host", self.host), parts.get("port", self.port)
        secret = quote(self.password if password is None else password, safe="")
        return f"postgresql://{self.name}:{secret}@{host}:{port}/{parts.get('dbname', self.dbname)}"

    @property
    def needles(self) -> tuple[str, ...]:
        """The password as written, as percent-encoded, and its random core alone."""
        return self.password, quote(self.password, safe=""), self.password[3:27]


@pytest.fixture
def role(lambda_env: LambdaEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[Role]:
    url = urlsplit(lambda_env.dsn)
    name = "nosecrets_" + os.urandom(4).hex()
    # Random core, then characters a URL must escape: the encoded and the raw form both count.
    password = "pw-" + os.urandom(12).hex() + "/@:%&'"
    made = Role(name, password, "127.0.0.1", url.port or 5432, url.path.strip("/"))
    with psycopg.connect(lambda_env.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD {psycopg.sql.quote(password)}")
        conn.execute(f"GRANT CREATE, USAGE ON SCHEMA public TO {name}")
    monkeypatch.setenv("PATCHER_DATABASE_URL", made.url())
    yield made
    with psycopg.connect(lambda_env.dsn, autocommit=True) as conn:
        conn.execute(f"REASSIGN OWNED BY {name} TO CURRENT_USER")
        conn.execute(f"DROP OWNED BY {name}")
        conn.execute(f"DROP ROLE {name}")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _migrations(env: LambdaEnv) -> None:
    env.put_many(
        {
            "0001_people.up.sql": "CREATE TABLE people (id int PRIMARY KEY, email text UNIQUE);\n",
            "0001_people.down.sql": "DROP TABLE people;\n",
            "0002_names.up.sql": "ALTER TABLE people ADD COLUMN name text;\n",
            "0002_names.down.sql": "ALTER TABLE people DROP COLUMN name;\n",
        }
    )


# --------------------------------------------------------------------------- scenarios


def test_every_action_as_a_role_with_a_password(
    lambda_env: LambdaEnv, role: Role, capture: Capture
) -> None:
    _migrations(lambda_env)
    statuses = [
        capture.invoke(event("migrate_verify"))["status"],
        capture.invoke(event("migrate"))["status"],
        capture.invoke(event("status"))["status"],
        capture.invoke(event("rollback_dry_run"))["status"],
        capture.invoke(event("rollback_one"))["status"],
        capture.invoke(event("migrate"))["status"],
    ]
    assert statuses == ["planned", "applied", "up_to_date", "planned", "reverted", "applied"]
    assert capture.results[0]["migrations"][0]["verified"] is True  # verify really ran
    messages = {line["message"] for line in capture.lines()}
    assert {"lock acquired", "migration", "run finished"} <= messages
    assert len(capture.configs) == 6
    assert role.url() not in repr(capture.configs[0]) and "***" in repr(capture.configs[0])
    assert capture.assert_clean(*role.needles) > 50


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
def test_a_unique_violation_keeps_its_row_out_of_the_log_unless_debug(
    lambda_env: LambdaEnv, role: Role, capture: Capture, level: int
) -> None:
    _migrations(lambda_env)
    lambda_env.put(
        "0003_rows.up.sql",
        f"INSERT INTO people VALUES (1, '{ROW_VALUE}');\n"
        f"INSERT INTO people VALUES (2, '{ROW_VALUE}');\n",
    )
    handler.logger.setLevel(level)
    result = capture.invoke(event("migrate"))
    assert (result["status"], result["error"]["sqlstate"]) == ("failed", "23505")
    assert ROW_VALUE in result["error"]["detail"]  # the caller is told
    assert any(isinstance(e, StatementFailed) and e.detail for e in capture.errors)
    (finished,) = capture.run_finished()
    if level == logging.DEBUG:
        assert ROW_VALUE in json.dumps(finished)
    else:
        assert ROW_VALUE not in json.dumps(finished)
        assert "detail" not in finished["error"] and "DEBUG" in finished["error"]["detail_hidden"]
        assert ROW_VALUE not in capture.stream.getvalue()  # nor any other line
    capture.assert_clean(*role.needles)


def test_the_advisory_lock_held_by_another_run(
    lambda_env: LambdaEnv, role: Role, capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    _migrations(lambda_env)
    monkeypatch.setenv("PATCHER_LOCK_WAIT_SECONDS", "0.3")
    with psycopg.connect(role.url(), autocommit=True, application_name="holder") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("public", "schema_migrations"),))
        result = capture.invoke(event("migrate"))
    assert (result["status"], result["error"]["type"]) == ("locked", "LockTimeout")
    assert role.name in result["error"]["message"]  # the holder is named, its password is not
    capture.assert_clean(*role.needles)


def test_a_statement_that_hits_lock_timeout(
    lambda_env: LambdaEnv, role: Role, capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    _migrations(lambda_env)
    assert capture.invoke(event("migrate"))["status"] == "applied"
    lambda_env.put("0003_more.up.sql", "ALTER TABLE people ADD COLUMN more int;\n")
    monkeypatch.setenv("PATCHER_LOCK_TIMEOUT", "50ms")
    with psycopg.connect(role.url()) as blocker:
        blocker.execute("LOCK TABLE people IN ACCESS SHARE MODE")
        result = capture.invoke(event("migrate"))
    assert (result["status"], result["error"]["sqlstate"]) == ("failed", "55P03")
    retried = [e for e in capture.errors if isinstance(e, StatementFailed)]
    assert len(retried) > 1 and all(e.lock_not_available for e in retried)  # retried
    capture.assert_clean(*role.needles)


@pytest.mark.parametrize(
    ("case", "echoed"),
    [
        ("closed port", False),
        ("wrong password", False),
        ("missing database", False),
        ("bad percent escape", True),  # libpq quotes the token it choked on: the password
        ("unclosed IPv6 bracket", True),  # libpq quotes the whole URI
        ("conninfo to a closed port", False),
    ],
)
def test_urls_that_do_not_connect(
    lambda_env: LambdaEnv,
    role: Role,
    capture: Capture,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    echoed: bool,
) -> None:
    url = {
        "closed port": role.url(port=_closed_port()),
        "wrong password": role.url(password=role.password[::-1]),
        "missing database": role.url(dbname="no_such_db"),
        "bad percent escape": role.url().replace("%40", "%zz", 1),
        "unclosed IPv6 bracket": role.url(host="[127.0.0.1"),
        "conninfo to a closed port": psycopg.conninfo.make_conninfo(
            host="127.0.0.1", port=str(_closed_port()), user=role.name, password=role.password
        ),
    }[case]
    _migrations(lambda_env)
    monkeypatch.setenv("PATCHER_DATABASE_URL", url)
    monkeypatch.setenv("PATCHER_CONNECT_BUDGET_SECONDS", "0")  # a refused port: one attempt
    result = capture.invoke(event("migrate"))
    if case == "wrong password" and result["ok"]:  # a trusting server: it connected anyway
        assert result["status"] == "applied"
    else:
        assert (result["ok"], result["error"]["type"]) == (False, "DatabaseUnavailable")
    if echoed:  # libpq's text held the password, and it was scrubbed
        assert "***" in result["error"]["message"]
    needles = [*role.needles, role.password[::-1], quote(role.password[::-1], safe="")]
    capture.assert_clean(*needles)


@pytest.mark.parametrize(
    ("payload", "env"),
    [
        ("not an object", {}),
        ({"action": "explode"}, {}),
        ({"action": "migrate", "password": "hunter2-in-the-payload"}, {}),
        ({"action": "migrate", "target": "three"}, {}),
        ({"action": "rollback", "steps": 1, "target": 0}, {}),
        ({"action": "migrate"}, {"PATCHER_LOCK_TIMEOUT": "soon"}),
        ({"action": "migrate"}, {"PATCHER_DB_SSLMODE": "sometimes"}),
        ({"action": "migrate"}, {"PATCHER_DB_SECRET_ARN": "arn:aws:secretsmanager:x"}),
        ({"action": "migrate"}, {"PATCHER_DB_IAM_AUTH": "true"}),
        ({"action": "migrate"}, {"PATCHER_SOURCE": "s3://"}),
    ],
)
def test_refused_payloads_and_configurations(
    lambda_env: LambdaEnv,
    role: Role,
    capture: Capture,
    monkeypatch: pytest.MonkeyPatch,
    payload: Any,
    env: dict[str, str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = capture.invoke(payload)
    assert (result["ok"], result["status"]) == (False, "invalid")
    assert result["error"]["type"] in ("InvalidRequest", "ConfigError", "InvalidSource")
    capture.assert_clean(*role.needles)
    # The caller's own value is no credential of ours (pydantic's error, the suppressed context
    # of the refusal, quotes it), but the refusal does not repeat it.
    assert "hunter2" not in capture.stream.getvalue() and "hunter2" not in json.dumps(result)


@pytest.fixture(params=["root at WARNING", "root at DEBUG"])
def root_level(request: pytest.FixtureRequest) -> Iterator[int]:
    """The root logger's level for the test: at DEBUG, botocore (unless pinned to WARNING by
    patcher.core.quiet_logs) logs the GetSecretValue response body, the password in it."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG if request.param.endswith("DEBUG") else logging.WARNING)
    try:
        yield root.level
    finally:
        root.setLevel(level)


def test_a_secret_from_secrets_manager(
    lambda_env: LambdaEnv,
    db_secret: Secret,
    capture: Capture,
    aws_env: str,
    monkeypatch: pytest.MonkeyPatch,
    root_level: int,
) -> None:
    monkeypatch.setenv("PATCHER_CONNECT_BUDGET_SECONDS", "0")  # a refused port: one attempt
    _migrations(lambda_env)
    client = boto3.client("secretsmanager", endpoint_url=aws_env)
    good = json.loads(client.get_secret_value(SecretId=db_secret.arn)["SecretString"])

    def rotate(text: str) -> None:
        client.put_secret_value(SecretId=db_secret.arn, SecretString=text)
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()

    assert capture.invoke(event("migrate_verify"))["status"] == "planned"
    lambda_env.put("0003_rows.up.sql", f"INSERT INTO people VALUES (1, '{ROW_VALUE}');\n" * 2)
    assert capture.invoke(event("migrate"))["error"]["sqlstate"] == "23505"
    rotate(json.dumps({**good, "port": _closed_port()}))
    assert capture.invoke(event("status"))["error"]["type"] == "DatabaseUnavailable"
    rotate(json.dumps({**good, "dbname": "no_such_db"}))
    assert capture.invoke(event("status"))["error"]["type"] == "DatabaseUnavailable"
    rotate(json.dumps(good)[:-8])  # cut JSON: the decoder's error must not quote it
    assert capture.invoke(event("status"))["error"]["type"] == "ConfigError"
    rotate(json.dumps({"password": db_secret.password, "username": "x"}))
    assert capture.invoke(event("status"))["error"]["type"] == "ConfigError"
    assert all(repr(c).count(db_secret.arn) == 1 for c in capture.configs)
    assert ROW_VALUE not in json.dumps(capture.run_finished())
    capture.assert_clean(db_secret.password, db_secret.password[3:])
    # The SDK logs nothing below WARNING, whatever the root's level (without the pin, at DEBUG,
    # it would: test_without_the_pin_botocore_would_log_the_secret).
    sdk = [r for r in capture.records if r.name.split(".")[0] in SDK_LOGGERS]
    assert all(r.levelno >= logging.WARNING for r in sdk)
    # No row value in any log line or log record, at any root level (the caller's result has it).
    logged = [capture.stream.getvalue(), *(repr(vars(r)) for r in capture.records)]
    assert not [text for text in logged if ROW_VALUE in text]


def test_without_the_pin_botocore_would_log_the_secret(
    lambda_env: LambdaEnv, db_secret: Secret, capture: Capture, root_level: int
) -> None:
    """The check above can fail: with the SDK's loggers unpinned and the root at DEBUG,
    botocore's response body (GetSecretValue: the password) is in the records."""
    loggers = [logging.getLogger(name) for name in SDK_LOGGERS]
    _migrations(lambda_env)
    try:
        for logger in loggers:
            logger.setLevel(logging.NOTSET)
        assert capture.invoke(event("status"))["ok"]
    finally:
        pin_sdk_loggers()
    if root_level == logging.DEBUG:
        with pytest.raises(AssertionError, match="credentials leaked"):
            capture.assert_clean(db_secret.password)
    else:
        capture.assert_clean(db_secret.password)


def test_rds_iam_auth_tokens(
    lambda_env: LambdaEnv,
    capture: Capture,
    aws_env: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The test server has no TLS, so verify-full fails after the token was made: the token,
    its signature and the AWS keys that signed it appear nowhere."""
    ca = tmp_path / "ca.pem"
    ca.write_bytes(make_ca().cert_pem)
    url = urlsplit(lambda_env.dsn)
    monkeypatch.setenv(
        "PATCHER_DATABASE_URL", f"postgresql://iam_user@{url.hostname}:{url.port}{url.path}"
    )
    monkeypatch.setenv("PATCHER_DB_IAM_AUTH", "true")
    monkeypatch.setenv("PATCHER_DB_SSLMODE", "verify-full")
    monkeypatch.setenv("PATCHER_DB_SSLROOTCERT", str(ca))
    _migrations(lambda_env)
    for name in ("migrate", "migrate_verify", "status"):
        result = capture.invoke(event(name))
        assert result["error"]["type"] == "DatabaseUnavailable"
        assert "TLS" in result["error"]["message"]
    assert len(capture.tokens) == 3 and all("X-Amz-Signature=" in t for t in capture.tokens)
    signatures = [t.rpartition("X-Amz-Signature=")[2] for t in capture.tokens]
    capture.assert_clean(*capture.tokens, *signatures, FAKE_SECRET)


def test_the_checker_finds_a_planted_secret(
    lambda_env: LambdaEnv, role: Role, capture: Capture
) -> None:
    """Each channel is looked at: a secret in an ``extra`` field, in an exception's cause, in a
    Config, in a result, or an IAM-like token in a log line fails the check."""
    _migrations(lambda_env)
    capture.invoke(event("status"))
    capture.assert_clean(*role.needles)

    class Holder:
        def __repr__(self) -> str:
            return f"Holder({role.password})"

    plants: list[Callable[[], None]] = [
        lambda: handler.logger.info("planted", extra={"thing": Holder()}),
        lambda: handler.logger.info(f"X-Amz-Signature={'0' * 64}"),
        lambda: capture.configs.append(Config(db_secret_arn=role.password)),
        lambda: capture.results.append({"error": {"message": quote(role.password, safe="")}}),
        lambda: capture.errors.append(_caused_by(ValueError(role.password[3:27]))),
    ]
    for plant in plants:
        plant()
        with pytest.raises(AssertionError, match="credentials leaked"):
            capture.assert_clean(*role.needles)
        del capture.records[1:], capture.configs[1:], capture.results[1:], capture.errors[:]
        capture.stream.seek(0)
        capture.stream.truncate()


def _caused_by(cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except ValueError as exc:
            raise RuntimeError("scrubbed") from exc
    except RuntimeError as outer:
        return outer
