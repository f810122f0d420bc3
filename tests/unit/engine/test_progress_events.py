"""The events a live watcher needs: each migration's start, a no-transaction statement's start,
and the lock wait (the CLI prints them; the Lambda's handler logs none of them)."""

from __future__ import annotations

from patcher.core.events import PROGRESS_EVENTS
from tests.unit.engine.kit import NO_TX, Env


def test_a_migration_sent_alone_is_started_then_ends(env: Env) -> None:
    env.tables(1)
    env.run()
    runs = [(name, f["version"]) for name, f in env.events if name.startswith("migration")]
    assert runs == [("migration_started", 1), ("migration", 1)]
    started = next(f for name, f in env.events if name == "migration_started")
    assert started == {
        "version": 1, "description": "t1", "direction": "up", "file": "0001_t1.up.sql",
        "transactional": True, "statements": 1,
    }  # fmt: skip


def test_migrations_sent_in_one_round_trip_start_as_a_batch_and_end_each(env: Env) -> None:
    env.tables(1, 2, 3)
    env.run()
    names = [name for name, _ in env.events if name.endswith("started") or name == "migration"]
    assert names == ["batch_started", "migration", "migration", "migration"]
    batch = next(f for name, f in env.events if name == "batch_started")
    assert batch == {"count": 3, "direction": "up", "first": 1, "last": 3,
                     "migrations": [[1, "t1"], [2, "t2"], [3, "t3"]]}  # fmt: skip
    ended = [f["version"] for name, f in env.events if name == "migration"]
    assert ended == [1, 2, 3]


def test_a_failed_migration_is_started_and_ends_failed(env: Env) -> None:
    env.source.pair(1, "bad", "SELECT 1/0;")
    env.run()
    names = [(name, f.get("state")) for name, f in env.events if name.startswith("migration")]
    assert names == [("migration_started", None), ("migration", "failed")]


def test_a_rollback_starts_its_down_scripts(env: Env) -> None:
    env.tables(1)
    env.run()
    env.events.clear()
    env.run("rollback")
    started = [f for name, f in env.events if name == "migration_started"]
    assert [(f["version"], f["direction"]) for f in started] == [(1, "down")]


def test_each_no_transaction_statement_is_announced(env: Env) -> None:
    env.source.pair(1, "idx", NO_TX + "CREATE TABLE a (id int);\nSELECT 1;\n")
    env.run()
    statements = [f for name, f in env.events if name == "statement_started"]
    assert [(f["index"], f["count"], f["line"]) for f in statements] == [(0, 2, 2), (1, 2, 3)]
    assert statements[0]["text"] == "CREATE TABLE a (id int)"


def test_a_dry_run_announces_no_migration(env: Env) -> None:
    env.tables(1)
    env.run(dry_run=True)
    assert not [name for name, _ in env.events if name in PROGRESS_EVENTS]
