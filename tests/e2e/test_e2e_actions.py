"""Every action through lambda_handler, against real PostgreSQL and the moto S3 server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patcher.aws.request import parse_payload
from tests.e2e.e2ekit import EVENTS, LambdaEnv, event
from tests.fixtures.engine import history, query, tables

USERS_UP = "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL);\n"
POSTS_UP = """CREATE TABLE posts (
    id bigint PRIMARY KEY,
    user_id bigint REFERENCES users (id),
    body text NOT NULL
);
"""
INDEX_UP = (
    "-- patcher:no-transaction\nCREATE INDEX CONCURRENTLY posts_user_id_idx ON posts (user_id);\n"
)
FILES = {
    "0001_create_users.up.sql": USERS_UP,
    "0001_create_users.down.sql": "DROP TABLE users;\n",
    "0002_create_posts.up.sql": POSTS_UP,
    "0002_create_posts.down.sql": "DROP TABLE posts;\n",
    "0003_posts_user_index.up.sql": INDEX_UP,
    "0003_posts_user_index.down.sql": (
        "-- patcher:no-transaction\nDROP INDEX CONCURRENTLY posts_user_id_idx;\n"
    ),
    "README.md": "not a migration\n",
}


def _upload(env: LambdaEnv) -> None:
    for name, text in FILES.items():
        env.put(name, text)


def _states(result: dict[str, object]) -> list[tuple[int, str, str]]:
    entries = result["migrations"]
    assert isinstance(entries, list)
    return [(e["version"], e["direction"], e["state"]) for e in entries]


def test_sample_events_are_valid_payloads() -> None:
    names = sorted(p.stem for p in EVENTS.glob("*.json"))
    assert len(names) >= 8
    for name in names:
        parse_payload(event(name))  # raises InvalidRequest if a README example went stale


def test_migrate_status_rollback_round_trip(lambda_env: LambdaEnv) -> None:
    _upload(lambda_env)

    plan = lambda_env.invoke(event("migrate_dry_run"))
    assert (plan["ok"], plan["status"], plan["dry_run"]) == (True, "planned", True)
    assert _states(plan) == [(1, "up", "planned"), (2, "up", "planned"), (3, "up", "planned")]
    assert plan["migrations"][0]["sql"] == USERS_UP
    assert all("risks" in e for e in plan["migrations"])
    assert plan["migrations"][2]["transactional"] is False
    assert [p["version"] for p in plan["pending"]] == [1, 2, 3]
    assert any("README.md" in w for w in plan["warnings"])
    assert tables(lambda_env.dsn) == set(), "a dry run creates nothing, not even the history"

    verified = lambda_env.invoke(event("migrate_verify"))
    assert verified["status"] == "planned"
    assert [e.get("verified") for e in verified["migrations"]] == [True, True, False]
    assert tables(lambda_env.dsn) == set()

    applied = lambda_env.invoke(event("migrate"))
    assert (applied["ok"], applied["status"], applied["current_version"]) == (True, "applied", 3)
    assert _states(applied) == [(1, "up", "applied"), (2, "up", "applied"), (3, "up", "applied")]
    assert all(isinstance(e["duration_ms"], int) for e in applied["migrations"])
    assert applied["pending"] == [] and applied["error"] is None
    assert history(lambda_env.dsn) == [(1, False), (2, False), (3, False)]
    assert {"users", "posts"} <= tables(lambda_env.dsn)

    again = lambda_env.invoke(event("migrate"))
    assert (again["ok"], again["status"], again["migrations"]) == (True, "up_to_date", [])

    status = lambda_env.invoke(event("status"))
    assert (status["status"], status["current_version"]) == ("up_to_date", 3)
    assert [e["version"] for e in status["migrations"]] == [1, 2, 3]
    assert all(e["applied_at"] for e in status["migrations"])

    preview = lambda_env.invoke(event("rollback_dry_run"))
    assert _states(preview) == [(3, "down", "planned")]
    assert history(lambda_env.dsn) == [(1, False), (2, False), (3, False)]

    one = lambda_env.invoke(event("rollback_one"))
    assert (one["ok"], one["status"], one["current_version"]) == (True, "reverted", 2)
    assert _states(one) == [(3, "down", "reverted")]

    everything = lambda_env.invoke(event("rollback_to_zero"))
    assert _states(everything) == [(2, "down", "reverted"), (1, "down", "reverted")]
    assert everything["current_version"] is None
    assert tables(lambda_env.dsn) == {
        "schema_migrations",
        "schema_migrations_log",
        "schema_migrations_snp",
    }

    log = query(lambda_env.dsn, "SELECT version, direction, outcome FROM schema_migrations_log")
    done = [row for row in log if row[2] in ("applied", "reverted")]
    assert len(done) == 6, "every attempt stays in the audit log, rollbacks included"
    requests = query(lambda_env.dsn, "SELECT DISTINCT request_id FROM schema_migrations_log")
    assert len(requests) == 3, "each invocation's request id is recorded"


def test_baseline_then_migrate_the_rest(lambda_env: LambdaEnv) -> None:
    """An existing database built by hand: baseline 1-2 without running them, then migrate."""
    _upload(lambda_env)
    query(lambda_env.dsn, USERS_UP + POSTS_UP)
    preview = lambda_env.invoke({"action": "baseline", "target": 2, "dry_run": True})
    assert _states(preview) == [(1, "up", "planned"), (2, "up", "planned")]

    marked = lambda_env.invoke(event("baseline"))  # target 2
    assert (marked["ok"], marked["status"], marked["current_version"]) == (True, "applied", 2)
    assert all(e["change"] == "marked as applied without running it" for e in marked["migrations"])
    assert history(lambda_env.dsn) == [(1, False), (2, False)]

    rest = lambda_env.invoke(event("migrate"))
    assert (_states(rest), rest["current_version"]) == ([(3, "up", "applied")], 3)
    again = lambda_env.invoke(event("baseline"))
    assert (again["status"], again["error"]["type"]) == ("invalid", "InvalidRequest")


def test_checksum_mismatch_then_repair(lambda_env: LambdaEnv) -> None:
    _upload(lambda_env)
    assert lambda_env.invoke(event("migrate"))["status"] == "applied"
    lambda_env.put("0002_create_posts.up.sql", POSTS_UP.replace("body", "text_body"))
    lambda_env.put("0004_later.up.sql", "CREATE TABLE later (id int);\n")

    for payload in (event("migrate_dry_run"), event("migrate")):
        refused = lambda_env.invoke(payload)
        assert (refused["ok"], refused["status"]) == (False, "invalid")
        assert refused["error"]["type"] == "ChecksumMismatch"
        assert refused["error"]["version"] == 2
        assert "repair" in refused["error"]["message"]
    assert "later" not in tables(lambda_env.dsn), "nothing ran after the mismatch"

    shown = lambda_env.invoke(event("repair_dry_run"))
    assert (shown["status"], _states(shown)) == ("planned", [(2, "up", "planned")])
    repaired = lambda_env.invoke(event("repair"))
    assert (repaired["ok"], repaired["status"]) == (True, "applied")
    assert lambda_env.invoke(event("migrate"))["current_version"] == 4


def test_invalid_source_runs_nothing(lambda_env: LambdaEnv) -> None:
    _upload(lambda_env)
    lambda_env.put("0002_duplicate.up.sql", "SELECT 1;\n")
    result = lambda_env.invoke(event("migrate"))
    assert (result["ok"], result["status"], result["error"]["type"]) == (
        False, "invalid", "InvalidSource",
    )  # fmt: skip
    assert tables(lambda_env.dsn) == set()


def test_configuration_errors_are_results(
    lambda_env: LambdaEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATCHER_DB_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:x")
    both = lambda_env.invoke(event("migrate"))
    assert (both["ok"], both["status"], both["error"]["type"]) == (False, "invalid", "ConfigError")
    assert "exactly one" in both["error"]["message"]

    monkeypatch.delenv("PATCHER_DB_SECRET_ARN")
    monkeypatch.setenv("PATCHER_SOURCE", "s3://")
    bad_source = lambda_env.invoke(event("status"))
    assert bad_source["error"]["type"] == "ConfigError"


def test_unreachable_database_is_a_failed_result(
    lambda_env: LambdaEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    _upload(lambda_env)
    monkeypatch.setenv("PATCHER_DATABASE_URL", "postgresql://app:hunter2-secret@127.0.0.1:9/x")
    result = lambda_env.invoke(event("migrate"))
    assert (result["ok"], result["status"]) == (False, "failed")
    assert result["error"]["type"] == "DatabaseUnavailable"
    assert "hunter2" not in json.dumps(result)


def test_tls_settings_reach_libpq(
    lambda_env: LambdaEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """PATCHER_DB_SSLMODE reaches libpq: verify-full against a server without TLS is refused.

    (A CA file that does not exist is refused earlier, as a ConfigError: tests/unit.)"""
    _upload(lambda_env)
    bundle = tmp_path / "rds-global-bundle.pem"
    bundle.write_text("not a certificate\n")
    monkeypatch.setenv("PATCHER_DB_SSLMODE", "verify-full")
    monkeypatch.setenv("PATCHER_DB_SSLROOTCERT", str(bundle))
    result = lambda_env.invoke(event("migrate"))
    assert result["error"]["type"] == "DatabaseUnavailable"
    assert "SSL" in result["error"]["message"]  # the server has no TLS: libpq got sslmode
    monkeypatch.setenv("PATCHER_DB_SSLMODE", "disable")
    monkeypatch.delenv("PATCHER_DB_SSLROOTCERT")
    assert lambda_env.invoke(event("migrate"))["status"] == "applied"
