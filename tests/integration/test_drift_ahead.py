"""The drift check's first question sent ahead (patcher/db/drift_ahead.py): it is on the server
before the run reads its scripts, its answer serves the check (never asked twice), a "no" goes
straight to the full comparison, and a script refused while it is out leaves the session and
the lock as any refusal does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from patcher.db import snapshot_store
from patcher.engine import runner
from tests.fixtures.engine import MigrationDir, Run, query

pytestmark = pytest.mark.db

QUESTION = "%pg_column_size(s.body)%"  # in unchanged_query's text, in no other query


def applied(mdir: MigrationDir, run: Run) -> None:
    mdir.pair("1", "items", "CREATE TABLE items (id bigint PRIMARY KEY);", "DROP TABLE items;")
    assert run("migrate")["ok"]


def counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Count the calls of ``snapshot_store.<name>`` from now on."""
    calls: list[int] = []
    real: Callable[..., Any] = getattr(snapshot_store, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(snapshot_store, name, counted)
    return calls


def test_the_question_is_on_the_server_before_the_scripts_are_read(
    pg_dsn: str, mdir: MigrationDir, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied(mdir, run)
    mdir.pair("2", "notes", "CREATE TABLE notes (id int);", "DROP TABLE notes;")
    seen: list[list[tuple[Any, ...]]] = []
    real = runner._load_scripts

    def load(*args: Any) -> Any:  # the run's session, as the server sees it, at that moment
        seen.append(
            query(
                pg_dsn,
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND query LIKE %s",
                (QUESTION,),
            )
        )
        return real(*args)

    monkeypatch.setattr(runner, "_load_scripts", load)
    asked_again = counting(monkeypatch, "_unchanged")
    result = run("migrate")
    assert result["ok"] and result["warnings"] == []
    assert len(seen) == 1 and len(seen[0]) == 1  # sent before the files were read
    assert asked_again == []  # its answer served the check


def test_a_drifted_schema_goes_straight_to_the_full_comparison(
    pg_dsn: str, mdir: MigrationDir, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied(mdir, run)
    query(pg_dsn, "ALTER TABLE items ADD COLUMN by_hand text")
    mdir.pair("2", "notes", "CREATE TABLE notes (id int);", "DROP TABLE notes;")
    asked_again, full = counting(monkeypatch, "_unchanged"), counting(monkeypatch, "read_live")
    result = run("migrate")
    assert result["ok"]
    assert any("public.items.by_hand" in w for w in result["warnings"]), result["warnings"]
    assert asked_again == [] and full == [1]


def test_a_dry_run_uses_the_answer_too(
    pg_dsn: str, mdir: MigrationDir, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied(mdir, run)
    query(pg_dsn, "ALTER TABLE items ADD COLUMN by_hand text")
    mdir.pair("2", "items_more", "ALTER TABLE items ADD COLUMN more int;")
    asked_again = counting(monkeypatch, "_unchanged")
    result = run("migrate", dry_run=True)
    risks = [r["code"] for m in result["migrations"] for r in m.get("risks") or []]
    assert "DRIFTED_OBJECT" in risks
    assert asked_again == []


def test_a_script_refused_while_the_question_is_out_loses_nothing(
    pg_dsn: str, mdir: MigrationDir, run: Run
) -> None:
    applied(mdir, run)
    mdir.pair("2", "load", "CREATE TABLE loaded (id int);\nCOPY loaded FROM STDIN;\n")
    result = run("migrate")
    assert not result["ok"] and result["error"]["type"] == "InvalidSource"
    assert "2_load.up.sql" in result["error"]["message"]
    assert query(pg_dsn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]
    assert query(pg_dsn, "SELECT to_regclass('loaded') IS NULL") == [(True,)]
    mdir.write("2_load.up.sql", "CREATE TABLE loaded (id int);\n")
    again = run("migrate")
    assert again["ok"] and again["warnings"] == [] and again["current_version"] == 2
