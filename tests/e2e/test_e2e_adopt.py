"""The ``adopt`` action through the deployed handler: S3 source in Flyway's layout, the payload
keys ``from`` and ``table``, then migrate applies only what Flyway had not."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.e2ekit import LambdaEnv, event
from tests.fixtures.engine import query
from tests.fixtures.foreign_tools import apply_with_tool, write_files


def put_folder(lambda_env: LambdaEnv, folder: Path) -> None:
    lambda_env.put_many({p.name: p.read_text() for p in folder.iterdir()})


def test_adopt_flyway_history_from_s3(lambda_env: LambdaEnv, tmp_path: Path) -> None:
    apply_with_tool("flyway", lambda_env.dsn, tmp_path, 2)
    write_files("flyway", tmp_path, 3)
    put_folder(lambda_env, tmp_path)
    planned = lambda_env.invoke(event("adopt_dry_run"))
    assert planned["status"] == "planned", planned["error"]
    assert [m["version"] for m in planned["migrations"]] == [1, 2]
    adopted = lambda_env.invoke(event("adopt"))
    assert adopted["ok"] and adopted["current_version"] == 2, adopted["error"]
    migrated = lambda_env.invoke({"action": "migrate"})
    assert [m["version"] for m in migrated["migrations"]] == [3]
    assert query(lambda_env.dsn, "SELECT count(*) FROM flyway_schema_history") == [(2,)]


def test_adopt_payload_keys_are_strict(lambda_env: LambdaEnv) -> None:
    for payload, words in [
        ({"action": "adopt"}, "adopt needs from"),
        ({"action": "adopt", "from": "liquibase"}, "from"),
        ({"action": "migrate", "from": "flyway"}, "for adopt only"),
        ({"action": "adopt", "from": "goose", "table": "x;drop"}, "not a table name"),
        ({"action": "adopt", "from": "goose", "steps": 1}, "steps"),
    ]:
        result = lambda_env.invoke(payload)
        assert result["status"] == "invalid", payload
        assert words in result["error"]["message"], (payload, result["error"])
