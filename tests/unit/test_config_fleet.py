"""PATCHER_TARGETS and the payload's ``database`` (SPEC sections 3 and 4)."""

from __future__ import annotations

import json

import pytest

from patcher.app.config import load_config, select_database
from patcher.core.errors import ConfigError, InvalidRequest

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:stackflow/{}-AbCdEf"


def fleet(*names: str) -> dict[str, str]:
    return {"PATCHER_TARGETS": json.dumps({n: ARN.format(n) for n in names})}


def test_targets_are_read_in_order() -> None:
    config = load_config(fleet("staging", "prod", "eu-1"))
    assert [name for name, _ in config.targets] == ["staging", "prod", "eu-1"]
    assert config.db_secret_arn is None and config.database_url is None


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("not json", "non-empty JSON object"),
        ("{}", "non-empty JSON object"),
        ('["a"]', "non-empty JSON object"),
        ('{"a b": "' + ARN.format("a") + '"}', "target name 'a b'"),
        ('{"a": "postgresql://x"}', "must be a Secrets Manager secret ARN"),
        ('{"a": 3}', "must be a Secrets Manager secret ARN"),
    ],
)
def test_bad_targets_are_a_config_error(value: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_config({"PATCHER_TARGETS": value})


def test_targets_exclude_the_other_database_settings() -> None:
    with pytest.raises(ConfigError, match="PATCHER_DB_SECRET_ARN and PATCHER_TARGETS are set"):
        load_config({**fleet("a"), "PATCHER_DB_SECRET_ARN": ARN.format("x")})
    with pytest.raises(ConfigError, match="none is set"):
        load_config({})
    # an explicit --database-url replaces the deployed targets
    config = load_config(fleet("a"), database_url="postgresql://local/db")
    assert config.targets == () and config.database_url == "postgresql://local/db"


def test_database_picks_its_targets_secret() -> None:
    config = load_config(fleet("staging", "prod"))
    assert select_database(config, "prod").db_secret_arn == ARN.format("prod")
    assert select_database(config, "staging").db_secret_arn == ARN.format("staging")


def test_one_target_needs_no_name() -> None:
    assert select_database(load_config(fleet("only")), None).db_secret_arn == ARN.format("only")


def test_database_is_required_with_several_targets() -> None:
    with pytest.raises(InvalidRequest, match=r"database is required: 2 targets .*staging, prod"):
        select_database(load_config(fleet("staging", "prod")), None)


def test_an_unknown_database_is_refused_with_the_known_names() -> None:
    with pytest.raises(InvalidRequest) as caught:
        select_database(load_config(fleet("staging", "prod")), "qa")
    assert caught.value.message == "unknown database 'qa': the configured targets are staging, prod"


def test_database_without_targets_is_refused() -> None:
    config = load_config({"PATCHER_DATABASE_URL": "postgresql://local/db"})
    assert select_database(config, None) is config
    with pytest.raises(InvalidRequest, match="PATCHER_TARGETS is not set"):
        select_database(config, "prod")
