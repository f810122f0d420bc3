"""The SPEC result object built from a run's Outcome: entries, ok, status, versions, errors."""

from __future__ import annotations

import hashlib
import json

import pytest

from patcher.app.result import build_result
from patcher.engine.outcome import Outcome, ResultEntry
from tests.unit.engine.kit import NO_TX, Env


def test_an_applied_run_result(env: Env) -> None:
    env.source.pair(1, "create_users", "CREATE TABLE users (id int);\n")
    result = env.result()
    assert (result["ok"], result["status"], result["current_version"]) == (True, "applied", 1)
    (entry,) = result["migrations"]
    digest = hashlib.sha256(b"CREATE TABLE users (id int);\n").hexdigest()
    assert entry["version"] == 1 and entry["description"] == "create_users"
    assert (entry["direction"], entry["state"], entry["checksum"]) == ("up", "applied", digest)
    assert entry["transactional"] is True and isinstance(entry["duration_ms"], int)
    assert "sql" not in entry  # only previews carry the SQL
    assert (result["pending"], result["error"], result["request_id"]) == ([], None, "req-1")


def test_pending_lists_versions_and_descriptions(env: Env) -> None:
    env.tables(1, 2, 3)
    result = env.result(target=1)
    assert result["pending"] == [
        {"version": 2, "description": "t2"},
        {"version": 3, "description": "t3"},
    ]


def test_no_transaction_entries_say_so(env: Env) -> None:
    env.source.pair(1, "nt", NO_TX + "SELECT 1;\n")
    assert env.result()["migrations"][0]["transactional"] is False


def test_a_failure_result_carries_the_error_and_its_location(env: Env) -> None:
    env.source.pair(1, "bad", "SELECT 1;\nSELECT 1/0;\n")
    result = env.result()
    assert (result["ok"], result["status"]) == (False, "failed")
    error = result["error"]
    assert error["type"] == "MigrationFailed"
    assert (error["version"], error["file"], error["line"], error["statement"]) == (
        1,
        "0001_bad.up.sql",
        2,
        2,
    )
    assert result["current_version"] is None


def refused_by_drift(env: Env) -> None:
    env.tables(1)
    env.run()
    env.source.pair(1, "t1", "CREATE TABLE t1 (id bigint);")


def locked(env: Env) -> None:
    env.tables(1)
    env.other().try_lock()


def failed_script(env: Env) -> None:
    env.source.pair(1, "bad", "SELECT 1/0;")


def unreachable(env: Env) -> None:
    env.tables(1)
    env.db.unreachable = True


@pytest.mark.parametrize(
    ("setup", "fields", "status", "error"),
    [
        (refused_by_drift, {}, "invalid", "ChecksumMismatch"),
        (locked, {}, "locked", "LockTimeout"),
        (failed_script, {}, "failed", "MigrationFailed"),
        (unreachable, {}, "failed", "DatabaseUnavailable"),
    ],
)
def test_status_and_ok_follow_the_error_category(
    env: Env, setup: object, fields: dict[str, int], status: str, error: str
) -> None:
    setup(env)  # type: ignore[operator]
    result = env.result(**fields)
    assert (result["ok"], result["status"], result["error"]["type"]) == (False, status, error)
    assert result["error"]["message"]


def test_partial_and_up_to_date_are_ok(env: Env) -> None:
    env.tables(1)
    partial = env.result(time_left_ms=lambda: 30_100)
    assert (partial["ok"], partial["status"]) == (True, "partial")
    env.run()
    done = env.result()
    assert (done["ok"], done["status"], done["migrations"]) == (True, "up_to_date", [])


def test_a_rollback_result_reports_reverted_and_the_new_current_version(env: Env) -> None:
    env.tables(1, 2)
    env.run()
    result = env.result("rollback")
    assert (result["status"], result["current_version"]) == ("reverted", 1)
    assert [(m["version"], m["state"]) for m in result["migrations"]] == [(2, "reverted")]
    assert result["pending"] == [{"version": 2, "description": "t2"}]


def test_catalog_warnings_reach_the_result(env: Env) -> None:
    env.tables(1)
    env.source.write("README.md", "notes")
    result = env.result()
    assert any("README.md" in w for w in result["warnings"])


def test_large_sql_previews_are_truncated_to_fit_the_limit() -> None:
    entries = [
        ResultEntry(v, f"m{v}", "up", "planned", "sum", sql="SELECT 1;\n" * 5000) for v in (1, 2)
    ]
    outcome = Outcome(status="planned", entries=entries)
    result = build_result(
        action="migrate", dry_run=True, outcome=outcome, request_id="r", duration_ms=1, limit=8000
    )
    assert len(json.dumps(result).encode()) <= 8000
    assert all(m["sql_truncated"] for m in result["migrations"])
    assert "truncated by StackFlowPatcher" in result["migrations"][0]["sql"]


def test_an_empty_source_on_a_database_with_no_history_warns(env: Env) -> None:
    """Issue 26 item 14: not a silent up_to_date; named source, once there is nothing at all."""
    env.source.write("README.md", "notes")
    for action in ("migrate", "status"):
        result = env.result(action)
        assert (result["ok"], result["status"]) == (True, "up_to_date")
        assert any("memory://migrations has no migration files" in w for w in result["warnings"])
    env.tables(1)
    env.run()
    assert not any("no migration files" in w for w in env.result()["warnings"])
