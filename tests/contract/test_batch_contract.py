"""The contract of ``MigrationBackend.run_batch`` (several transactional migrations in one round
trip, each its own transaction), on the real ``PostgresBackend`` and the in-memory fake: each item
commits with its history change and audit row, the batch stops at the first failure with the
failure located inside that item, a parse error in a later item still runs the ones before it,
the server-side deadline guard refuses to start later items, the session is restored and the
lock checked after each item."""

from __future__ import annotations

import pytest

from patcher.core.batch_items import BatchItem
from patcher.core.models import LockState
from patcher.db import execution
from patcher.sql.lexer import split_statements
from tests.contract import test_backend_contract as contract
from tests.contract.test_backend_contract import Bench, change, fails, outcomes

bench = contract.bench  # the fixture: each test runs on PostgreSQL and on the fake


def item(version: int, text: str) -> BatchItem:
    statements = list(split_statements(text))
    return BatchItem(text, [s.start for s in statements], [s.text for s in statements],
                     change(version))  # fmt: skip


def versions(bench: Bench) -> list[int]:
    return [r["version"] for r in bench.log_rows() if r["outcome"] == "applied"]


def test_each_item_commits_with_its_history_change_and_audit_row(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    assert backend.try_lock()
    items = [
        item(v, f"CREATE TABLE a{v} (id int);\nINSERT INTO a{v} VALUES ({v});") for v in (1, 2, 3)
    ]
    done = backend.run_batch(items, None)
    assert (done.failure, done.deadline) == (None, False)
    assert [c.lock for c in done.committed] == [LockState.HELD] * 3
    assert {"a1", "a2", "a3"} <= bench.tables() and bench.row_count("a3") == 1
    history = backend.read_history()
    assert [r.version for r in history] == [1, 2, 3]
    assert [r.execution_ms for r in history] == [c.elapsed_ms for c in done.committed]
    assert outcomes(bench) == [(1, "up", "applied"), (2, "up", "applied"), (3, "up", "applied")]
    assert [r["duration_ms"] for r in bench.log_rows()] == [c.elapsed_ms for c in done.committed]
    assert backend.holds_lock()


def test_a_failing_item_stops_the_batch_and_names_its_statement(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    items = [
        item(1, "CREATE TABLE a1 (id int);"),
        item(2, "CREATE TABLE a2 (id int);"),
        item(3, "CREATE TABLE a3 (id int);\n-- then\nINSERT INTO missing VALUES (1);"),
        item(4, "CREATE TABLE a4 (id int);"),
    ]
    done = backend.run_batch(items, None)
    assert len(done.committed) == 2 and done.failure is not None and not done.deadline
    exc = done.failure
    assert (exc.index, exc.sqlstate, exc.position, exc.at_commit) == (1, "42P01", 13, False)
    assert {"a1", "a2"} <= bench.tables() and not {"a3", "a4"} & bench.tables()
    assert [r.version for r in backend.read_history()] == [1, 2]
    assert len(bench.log_rows()) == 2  # the engine logs the failure, not the backend


def test_a_runtime_error_is_located_by_its_statement(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    items = [item(1, "SELECT 1;"), item(2, "SELECT 1;\nSELECT 2;\nSELECT 1/0;\nSELECT 3;")]
    done = backend.run_batch(items, None)
    assert len(done.committed) == 1 and done.failure is not None
    assert (done.failure.index, done.failure.sqlstate, done.failure.position) == (2, "22012", None)


def test_a_parse_error_in_a_later_item_still_runs_the_items_before_it(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    items = [
        item(1, "CREATE TABLE a1 (id int);"),
        item(2, "SELECT 1;\nCREATE TABEL x (id int);"),
        item(3, "CREATE TABLE a3 (id int);"),
    ]
    done = backend.run_batch(items, None)
    assert len(done.committed) == 1 and done.failure is not None
    assert (done.failure.index, done.failure.sqlstate, done.failure.position) == (1, "42601", 8)
    assert "a1" in bench.tables() and "a3" not in bench.tables()
    assert [r.version for r in backend.read_history()] == [1]


def test_a_history_conflict_fails_that_item_at_commit(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    backend.record([change(2)])
    items = [item(v, f"CREATE TABLE a{v} (id int);") for v in (1, 2, 3)]
    done = backend.run_batch(items, None)
    assert len(done.committed) == 1 and done.failure is not None
    assert (done.failure.at_commit, done.failure.index, done.failure.sqlstate) == (True, 1, "23505")
    assert "a1" in bench.tables() and not {"a2", "a3"} & bench.tables()


def test_the_deadline_guard_refuses_to_start_a_later_item(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    items = [item(1, "SELECT pg_sleep(0.3);"), item(2, "CREATE TABLE a2 (id int);")]
    done = backend.run_batch(items, 100)
    assert (len(done.committed), done.failure, done.deadline) == (1, None, True)
    assert "a2" not in bench.tables() and [r.version for r in backend.read_history()] == [1]
    done = backend.run_batch([item(3, "SELECT pg_sleep(0.3);")], 0)  # the first always starts
    assert (len(done.committed), done.deadline) == (1, False)


def test_the_session_is_restored_and_the_lock_checked_after_each_item(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    assert backend.try_lock()
    items = [
        item(1, "SET search_path = nowhere;\nSELECT pg_advisory_unlock_all();"),
        item(2, "CREATE TABLE lands_in_public (id int);"),  # no schema selected without restore
    ]
    done = backend.run_batch(items, None)
    assert done.failure is None, done.failure
    assert [c.lock for c in done.committed] == [LockState.RETAKEN, LockState.HELD]
    assert "lands_in_public" in bench.tables() and backend.holds_lock()


def test_a_stop_check_that_says_stop_sends_nothing(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    done = backend.run_batch([item(1, "CREATE TABLE a1 (id int);")], None, lambda: True)
    assert done.committed == [] and done.failure is not None and done.failure.cancelled
    assert "a1" not in bench.tables() and backend.read_history() == []


def test_statements_sent_several_per_message_fail_at_their_own_index(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(execution, "CHUNK_CHARS", 30)  # a few statements per message
    backend = bench.open()
    backend.ensure_tables()
    statements = [f"CREATE TABLE c{i} (id int)" for i in range(6)]
    cases = [("SELECT 1/0", None), ("INSERT INTO missing VALUES (1)", 13),
             ("CREATE TABEL x (id int)", 8)]  # fmt: skip
    for bad, position in cases:
        exc = fails(
            lambda bad=bad: backend.run_transactional([*statements, bad, "SELECT 2"], change(1))
        )
        assert (exc.index, exc.position, exc.at_commit) == (6, position, False), bad
        assert not {f"c{i}" for i in range(6)} & bench.tables()
    done = backend.run_transactional([*statements, "SELECT 2"], change(1))
    assert done.lock is not None and {f"c{i}" for i in range(6)} <= bench.tables()
    assert [r.version for r in backend.read_history()] == [1]
