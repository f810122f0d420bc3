"""Configuration comes only from the environment, and bad settings are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from patcher.app.config import DEFAULT_SOURCE, load_config, redact_url
from patcher.app.environment import powertools_names
from patcher.core.errors import ConfigError

URL = {"PATCHER_DATABASE_URL": "postgresql://u@h/db"}


def test_defaults() -> None:
    config = load_config(URL)
    assert (config.source, config.schema, config.table) == (
        DEFAULT_SOURCE, "public", "schema_migrations",
    )  # fmt: skip
    assert (config.lock_wait_seconds, config.lock_timeout, config.time_margin_seconds) == (
        60, "10s", 30,
    )  # fmt: skip
    assert config.statement_timeout_ms is None


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({}, "none is set"),
        ({**URL, "PATCHER_DB_SECRET_ARN": "arn:aws:secretsmanager:x"}, "SECRET_ARN are set"),
        ({**URL, "PATCHER_TABLE": "bad-name"}, "PATCHER_TABLE"),
        ({**URL, "PATCHER_SCHEMA": "x" * 64}, "PATCHER_SCHEMA"),
        ({**URL, "PATCHER_LOCK_TIMEOUT": "ten seconds"}, "PATCHER_LOCK_TIMEOUT"),
        ({**URL, "PATCHER_STATEMENT_TIMEOUT": "5 parsecs"}, "PATCHER_STATEMENT_TIMEOUT"),
        ({**URL, "PATCHER_LOCK_WAIT_SECONDS": "-1"}, "PATCHER_LOCK_WAIT_SECONDS"),
        ({**URL, "PATCHER_TIME_MARGIN_SECONDS": "soon"}, "PATCHER_TIME_MARGIN_SECONDS"),
        ({**URL, "PATCHER_CONNECT_BUDGET_SECONDS": "a minute"}, "PATCHER_CONNECT_BUDGET_SECONDS"),
        ({**URL, "PATCHER_EXPECTED_BUCKET_OWNER": "me"}, "12-digit"),
    ],
)
def test_bad_settings_are_named(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_config(env)


def test_cli_flags_win_and_durations_parse() -> None:
    env = {"PATCHER_DB_SECRET_ARN": "arn:x", "PATCHER_STATEMENT_TIMEOUT": "2min"}
    config = load_config(env, database_url="postgresql://local/db", source="file:///m")
    assert config.database_url == "postgresql://local/db" and config.db_secret_arn is None
    assert config.statement_timeout_ms == 120_000


def test_the_connect_budget_defaults_to_a_minute_and_may_be_zero() -> None:
    assert load_config(URL).connect_budget_seconds == 60.0
    assert load_config({**URL, "PATCHER_CONNECT_BUDGET_SECONDS": "0"}).connect_budget_seconds == 0
    assert load_config({**URL, "PATCHER_CONNECT_BUDGET_SECONDS": "90"}).connect_budget_seconds == 90


def test_powertools_names_follow_the_environment() -> None:
    assert powertools_names({}) == ("stackflowpatcher", "StackFlowPatcher")
    env = {"POWERTOOLS_SERVICE_NAME": "svc", "POWERTOOLS_METRICS_NAMESPACE": "Ns"}
    assert powertools_names(env) == ("svc", "Ns")


# --- TLS, IAM auth and secrets ----------------------------------------------------------------


def test_iam_auth_is_off_by_default_and_parsed_strictly() -> None:
    assert load_config(URL).iam_auth is False
    env = {**URL, "PATCHER_DB_SSLMODE": "verify-full"}
    assert load_config({**env, "PATCHER_DB_IAM_AUTH": "true"}).iam_auth is True
    assert load_config({**env, "PATCHER_DB_IAM_AUTH": "FALSE"}).iam_auth is False
    for bad in ("yes", "1", "on", "ture"):
        with pytest.raises(ConfigError, match=r"PATCHER_DB_IAM_AUTH=.* must be true or false"):
            load_config({**env, "PATCHER_DB_IAM_AUTH": bad})


@pytest.mark.parametrize("sslmode", [None, "disable", "allow", "prefer", "require"])
def test_iam_auth_needs_a_verified_server(sslmode: str | None) -> None:
    env = {**URL, "PATCHER_DB_IAM_AUTH": "true"}
    if sslmode:
        env["PATCHER_DB_SSLMODE"] = sslmode
    with pytest.raises(ConfigError, match="verify-full") as caught:
        load_config(env)
    assert (sslmode or "unset") in caught.value.message


def test_iam_auth_with_verify_ca_or_full() -> None:
    for mode in ("verify-ca", "verify-full"):
        env = {**URL, "PATCHER_DB_IAM_AUTH": "true", "PATCHER_DB_SSLMODE": mode}
        assert load_config(env).sslmode == mode


def test_sslmode_must_be_a_libpq_mode() -> None:
    with pytest.raises(ConfigError, match="PATCHER_DB_SSLMODE='verify_full' must be one of"):
        load_config({**URL, "PATCHER_DB_SSLMODE": "verify_full"})


def test_a_missing_ca_file_fails_closed_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "certs" / "rds-global-bundle.pem"
    env = {**URL, "PATCHER_DB_SSLMODE": "verify-full", "PATCHER_DB_SSLROOTCERT": str(missing)}
    with pytest.raises(ConfigError) as caught:
        load_config(env)
    message = caught.value.message
    assert str(missing) in message
    assert "make package CA_BUNDLE=" in message  # what to do
    missing.parent.mkdir()
    missing.write_text("-----BEGIN CERTIFICATE-----\n")
    assert load_config(env).sslrootcert == str(missing)
    with pytest.raises(ConfigError, match="not a file"):
        load_config({**env, "PATCHER_DB_SSLROOTCERT": str(tmp_path)})
    assert load_config({**env, "PATCHER_DB_SSLROOTCERT": "system"}).sslrootcert == "system"


SECRET = "s3cr@t:/pw"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://runner:{SECRET}@db.example.com:5432/app?sslmode=verify-full",
        "postgresql://runner:s3cr@t@db.example.com/app",  # an unencoded "@" in the password
        "postgresql://runner:s3cr%40t@db.example.com/app",
        "postgresql://runner@db.example.com/app?password=s3cr%40t&application_name=x",
        "host=db.example.com user=runner password=s3cr@t dbname=app",
        "host=db.example.com user=runner password='s3cr@t x' dbname=app",
    ],
)
def test_config_repr_never_shows_the_password(url: str) -> None:
    config = load_config({"PATCHER_DATABASE_URL": url})
    assert config.database_url == url  # the value itself is intact
    for rendered in (repr(config), str(config), f"{config}", f"{config!r}", str([config])):
        assert "s3cr" not in rendered, rendered
        assert "***" in rendered
        assert "db.example.com" in rendered  # still useful to read
    assert "Config(source=" in repr(config)


def test_redact_url_leaves_a_url_without_password_alone() -> None:
    assert redact_url("postgresql://runner@db/app") == "postgresql://runner@db/app"
