"""Configuration comes only from the environment, and bad settings are named."""

from __future__ import annotations

import pytest

from patcher.config import DEFAULT_SOURCE, load_config, powertools_names
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
        ({}, "neither is set"),
        ({**URL, "PATCHER_DB_SECRET_ARN": "arn:aws:secretsmanager:x"}, "both is set"),
        ({**URL, "PATCHER_TABLE": "bad-name"}, "PATCHER_TABLE"),
        ({**URL, "PATCHER_SCHEMA": "x" * 64}, "PATCHER_SCHEMA"),
        ({**URL, "PATCHER_LOCK_TIMEOUT": "ten seconds"}, "PATCHER_LOCK_TIMEOUT"),
        ({**URL, "PATCHER_STATEMENT_TIMEOUT": "5 parsecs"}, "PATCHER_STATEMENT_TIMEOUT"),
        ({**URL, "PATCHER_LOCK_WAIT_SECONDS": "-1"}, "PATCHER_LOCK_WAIT_SECONDS"),
        ({**URL, "PATCHER_TIME_MARGIN_SECONDS": "soon"}, "PATCHER_TIME_MARGIN_SECONDS"),
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


def test_powertools_names_follow_the_environment() -> None:
    assert powertools_names({}) == ("stackflowpatcher", "StackFlowPatcher")
    env = {"POWERTOOLS_SERVICE_NAME": "svc", "POWERTOOLS_METRICS_NAMESPACE": "Ns"}
    assert powertools_names(env) == ("svc", "Ns")
