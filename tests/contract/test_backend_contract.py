"""The contract every ``MigrationBackend`` keeps (``patcher/engine/ports.py``), run against the
real ``PostgresBackend`` and the in-memory ``FakeBackend`` the engine's unit tests use (the
preview port's in ``test_preview_contract.py``, other tools' histories' in
``test_foreign_contract.py``, on the same benches).

Each test uses only protocol methods; a bench per backend opens sessions and reads back what the
protocol does not show (table names, audit rows). The postgres bench gets a fresh database per
test (``pg_dsn``, marked ``db``); the fake one touches no server.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

import psycopg
import pytest
from psycopg.rows import dict_row

from patcher.core.errors import ConfigError, DatabaseUnavailable, StatementFailed
from patcher.core.models import Direction, HistoryChange, IndexState, LockState, StepKind
from patcher.engine.ports import MigrationBackend
from tests.fakes.backend import FakeDatabase

try:
    from patcher.db import PostgresBackend  # type: ignore[attr-defined]
except ImportError:  # until patcher.db re-exports it
    from patcher.db.postgres import PostgresBackend


class Bench(Protocol):
    dbname: str

    def open(self, application_name: str = "contract") -> MigrationBackend: ...

    def tables(self) -> set[str]: ...

    def log_rows(self) -> list[dict[str, Any]]: ...

    def row_count(self, table: str) -> int: ...

    def close(self) -> None: ...


class PostgresBench:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
        self.opened: list[MigrationBackend] = []

    def open(self, application_name: str = "contract") -> MigrationBackend:
        backend = PostgresBackend.connect(
            self.dsn,
            application_name=application_name,
            schema="public",
            table="schema_migrations",
            request_id="t",
            invoked_by="t",
        )
        self.opened.append(backend)
        return backend

    def _query(self, sql: str) -> list[dict[str, Any]]:
        with psycopg.connect(self.dsn, autocommit=True, row_factory=dict_row) as conn:
            return conn.execute(sql).fetchall()  # type: ignore[arg-type]

    def tables(self) -> set[str]:
        rows = self._query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}

    def log_rows(self) -> list[dict[str, Any]]:
        if "schema_migrations_log" not in self.tables():
            return []
        return self._query("SELECT * FROM schema_migrations_log ORDER BY id")

    def row_count(self, table: str) -> int:
        return int(self._query(f"SELECT count(*) AS n FROM {table}")[0]["n"])

    def close(self) -> None:
        for backend in self.opened:
            backend.close()


class FakeBench:
    def __init__(self) -> None:
        self.db = FakeDatabase()
        self.dbname = self.db.name

    def open(self, application_name: str = "contract") -> MigrationBackend:
        return self.db.connect(application_name=application_name, request_id="t", invoked_by="t")

    def tables(self) -> set[str]:
        return self.db.table_names()

    def log_rows(self) -> list[dict[str, Any]]:
        return self.db.log_rows()

    def row_count(self, table: str) -> int:
        return len(self.db.rows(table))

    def close(self) -> None:
        for session in self.db.sessions:
            session.close()


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.db), "fake"])
def bench(request: pytest.FixtureRequest) -> Iterator[Bench]:
    made: Bench = (
        PostgresBench(request.getfixturevalue("pg_dsn"))
        if request.param == "postgres"
        else FakeBench()
    )
    yield made
    made.close()


def change(
    version: int,
    kind: StepKind = StepKind.RUN,
    direction: Direction = "up",
    checksum: str | None = None,
    fingerprint: str | None = None,
) -> HistoryChange:
    return HistoryChange(
        version, f"m{version}", direction, checksum or f"sum{version}", fingerprint, kind
    )


def outcomes(bench: Bench) -> list[tuple[int, str, str]]:
    return [(r["version"], r["direction"], r["outcome"]) for r in bench.log_rows()]


def fails(action: Any) -> StatementFailed:
    with pytest.raises(StatementFailed) as caught:
        action()
    return caught.value


def flags(exc: StatementFailed) -> tuple[bool, bool, bool, bool]:
    return exc.at_commit, exc.connection_lost, exc.lock_not_available, exc.cancelled


# -- the advisory lock ---------------------------------------------------------------------------


def test_lock_key_is_the_documented_one(bench: Bench) -> None:
    digest = hashlib.sha256(b"stackflowpatcher:public.schema_migrations").digest()
    assert bench.open().key == int.from_bytes(digest[:8], "big", signed=True)


def test_lock_is_exclusive_across_two_sessions(bench: Bench) -> None:
    a, b = bench.open("a"), bench.open("b")
    assert a.try_lock() is True
    assert b.try_lock() is False
    assert (a.holds_lock(), b.holds_lock()) == (True, False)
    a.unlock()
    assert a.holds_lock() is False
    assert b.try_lock() is True
    assert a.try_lock() is False


def test_a_waiting_try_is_woken_by_the_release(bench: Bench) -> None:
    a, b, c = bench.open("a"), bench.open("b"), bench.open("c")
    assert a.try_lock()
    assert b.try_lock(30.0) is False and c.try_lock(30.0) is False  # the first only listens
    releaser = threading.Timer(0.2, a.unlock)
    releaser.start()
    started = time.monotonic()
    assert b.try_lock(30.0) is True  # told by the unlock, long before its wait ran out
    assert time.monotonic() - started < 15
    releaser.join()
    assert c.try_lock(0.2) is False  # told too, but b holds it now
    b.unlock()
    assert c.try_lock(0.0) is True


def test_close_releases_the_lock(bench: Bench) -> None:
    a, b = bench.open("a"), bench.open("b")
    assert a.try_lock()
    a.close()
    a.close()  # never raises, not even twice
    assert b.try_lock() is True


def test_unlock_all_inside_a_migration_releases_the_lock_even_when_rolled_back(
    bench: Bench,
) -> None:
    a, b = bench.open("a"), bench.open("b")
    assert a.try_lock()
    a.run_statements(["SELECT pg_advisory_unlock_all()"], None)
    assert a.holds_lock() is False
    assert b.try_lock() and b.holds_lock()
    b.ensure_tables()
    exc = fails(
        lambda: b.run_transactional(["SELECT pg_advisory_unlock_all()", "SELECT 1/0"], change(1))
    )
    assert exc.index == 1
    assert b.holds_lock() is False  # session locks are not transactional
    assert a.try_lock() is True


def test_lock_holder_names_the_holding_session(bench: Bench) -> None:
    a, b = bench.open("holder-app"), bench.open("waiter")
    assert b.lock_holder() is None
    assert a.try_lock()
    seen_by_b, seen_by_a = b.lock_holder(), a.lock_holder()
    assert seen_by_b is not None and seen_by_a is not None
    assert seen_by_b.pid == seen_by_a.pid
    assert seen_by_b.application_name == "holder-app"
    assert seen_by_b.since and f"pid {seen_by_b.pid} (holder-app" in seen_by_b.describe()
    a.close()
    assert b.lock_holder() is None


# -- the history ---------------------------------------------------------------------------------


def test_before_ensure_tables_history_is_empty_and_nothing_is_created(bench: Bench) -> None:
    backend = bench.open()
    assert backend.read_history() == []
    assert backend.applied_count(100) is None
    assert "schema_migrations" not in bench.tables()


def test_ensure_tables_creates_both_tables_and_is_idempotent(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    backend.record([change(1)])
    backend.ensure_tables()
    assert {"schema_migrations", "schema_migrations_log"} <= bench.tables()
    assert [r.version for r in backend.read_history()] == [1]
    assert backend.applied_count(10) == 1


def test_ensure_tables_refuses_another_tools_history_table(bench: Bench) -> None:
    backend = bench.open()
    backend.run_statements(
        ["CREATE TABLE schema_migrations (version bigint primary key, dirty boolean)"], None
    )
    with pytest.raises(ConfigError, match="not made by StackFlowPatcher"):
        backend.ensure_tables()
    with pytest.raises(ConfigError):
        backend.read_history()
    assert "schema_migrations" in bench.tables()
    assert "schema_migrations_log" not in bench.tables()


def test_record_inserts_rows_each_with_its_audit_row(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    backend.record(
        [change(1, StepKind.BASELINE, fingerprint="etag1"), change(2, StepKind.BASELINE)]
    )
    rows = backend.read_history()
    assert [(r.version, r.description, r.checksum, r.dirty) for r in rows] == [
        (1, "m1", "sum1", False),
        (2, "m2", "sum2", False),
    ]
    assert rows[0].fingerprint == "etag1" and rows[1].fingerprint is None
    assert rows[0].applied_at is not None
    assert outcomes(bench) == [(1, "up", "baselined"), (2, "up", "baselined")]
    log = bench.log_rows()
    assert [r["request_id"] for r in log] == ["t", "t"]
    assert log[0]["id"] < log[1]["id"]


def test_record_is_all_or_nothing(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    with pytest.raises(DatabaseUnavailable), backend.errors_translated():
        backend.record([change(1), change(2), change(1)])  # the second 1 violates the key
    assert backend.read_history() == []
    assert bench.log_rows() == []


def test_record_delete_removes_the_row_and_keeps_the_log(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    backend.record([change(1), change(2)])
    backend.record([change(2, direction="down")])
    assert [r.version for r in backend.read_history()] == [1]
    assert outcomes(bench) == [(1, "up", "applied"), (2, "up", "applied"), (2, "down", "reverted")]


def test_record_rechecksum_replaces_checksum_and_fingerprint(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    backend.record([change(1, fingerprint="old")])
    backend.record([change(1, StepKind.RECHECKSUM, checksum="new", fingerprint="etag2")])
    row = backend.read_history()[0]
    assert (row.checksum, row.fingerprint, row.dirty) == ("new", "etag2", False)
    assert outcomes(bench)[-1] == (1, "up", "rechecksummed")


def test_clear_dirty_repairs_a_dirty_down_and_drops_a_dirty_up(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    backend.record([change(1)])
    backend.mark_dirty(change(1, direction="down"))
    backend.mark_dirty(change(2))
    assert [(r.version, r.dirty, r.dirty_direction) for r in backend.read_history()] == [
        (1, True, "down"),
        (2, True, "up"),
    ]
    backend.record([change(1, StepKind.CLEAR_DIRTY, "down"), change(2, StepKind.CLEAR_DIRTY, "up")])
    assert [(r.version, r.dirty, r.dirty_direction) for r in backend.read_history()] == [
        (1, False, None)
    ]
    assert outcomes(bench)[-2:] == [(1, "down", "repaired"), (2, "up", "repaired")]


def test_mark_dirty_then_finish_clean_up(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    backend.mark_dirty(change(3))
    assert backend.applied_count(3) is None
    backend.finish_clean(change(3), 42)
    row = backend.read_history()[0]
    assert (row.version, row.dirty, row.dirty_direction, row.execution_ms) == (3, False, None, 42)
    assert backend.applied_count(3) == 1
    assert outcomes(bench) == [(3, "up", "started"), (3, "up", "applied")]
    assert bench.log_rows()[-1]["duration_ms"] == 42


def test_mark_dirty_then_finish_clean_down(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    backend.record([change(3)])
    backend.mark_dirty(change(3, direction="down"))
    assert backend.read_history()[0].dirty_direction == "down"
    backend.finish_clean(change(3, direction="down"), 5)
    assert backend.read_history() == []
    assert outcomes(bench) == [
        (3, "up", "applied"),
        (3, "down", "started"),
        (3, "down", "reverted"),
    ]


def test_applied_count_counts_clean_rows_at_or_below(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    backend.record([change(1), change(2), change(5)])
    assert [backend.applied_count(n) for n in (0, 2, 5, 99)] == [0, 2, 3, 3]
    backend.mark_dirty(change(7))
    assert backend.applied_count(5) == 3  # the dirty row is above the bound
    assert backend.applied_count(7) is None


def test_log_appends_one_audit_row_alone(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    backend.log(change(4), outcome="failed", duration_ms=7, error="boom")
    assert backend.read_history() == []
    (row,) = bench.log_rows()
    assert (row["version"], row["outcome"], row["duration_ms"], row["error"]) == (
        4,
        "failed",
        7,
        "boom",
    )
    assert (row["checksum"], row["invoked_by"]) == ("sum4", "t")


# -- running -------------------------------------------------------------------------------------


def test_run_transactional_commits_statements_history_and_audit_row(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    elapsed = backend.run_transactional(
        ["CREATE TABLE a (id int)", "INSERT INTO a VALUES (1), (2)"], change(1)
    ).elapsed_ms
    assert "a" in bench.tables() and bench.row_count("a") == 2
    (row,) = backend.read_history()
    assert (row.version, row.dirty, row.execution_ms) == (1, False, elapsed)
    assert outcomes(bench) == [(1, "up", "applied")]
    assert bench.log_rows()[0]["duration_ms"] == elapsed


def test_run_transactional_failure_leaves_nothing(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    exc = fails(
        lambda: backend.run_transactional(
            ["CREATE TABLE a (id int)", "INSERT INTO missing VALUES (1)"], change(1)
        )
    )
    assert (exc.index, exc.sqlstate, exc.position) == (1, "42P01", 13)
    assert flags(exc) == (False, False, False, False)
    assert "a" not in bench.tables()
    assert backend.read_history() == [] and bench.log_rows() == []


def test_syntax_error_names_its_position_inside_the_statement(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    exc = fails(
        lambda: backend.run_transactional(["SELECT 1", "CREATE TABEL x (id int)"], change(1))
    )
    assert (exc.index, exc.sqlstate, exc.position) == (1, "42601", 8)
    assert "TABEL" in exc.message
    exc = fails(lambda: backend.run_statements(["CRATE TABLE x (id int)"], None))
    assert (exc.index, exc.sqlstate, exc.position) == (0, "42601", 1)


def test_history_conflict_fails_at_commit_and_rolls_back(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    backend.record([change(1)])
    exc = fails(lambda: backend.run_transactional(["CREATE TABLE b (id int)"], change(1)))
    assert (exc.at_commit, exc.index, exc.sqlstate) == (True, 1, "23505")
    assert "b" not in bench.tables()
    assert len(bench.log_rows()) == 1


def test_run_statements_keeps_what_ran_before_the_failure(bench: Bench) -> None:
    backend = bench.open()
    exc = fails(
        lambda: backend.run_statements(
            ["CREATE TABLE a (id int)", "SELECT 1/0", "CREATE TABLE c (id int)"], None
        )
    )
    assert (exc.index, exc.sqlstate, exc.position) == (1, "22012", None)
    assert flags(exc) == (False, False, False, False)
    assert {"a", "c"} & bench.tables() == {"a"}


def test_a_temp_table_ends_with_the_migration_that_made_it(bench: Bench) -> None:
    """SPEC 7 item 2: a temp ``items`` would take the next migration's unqualified INSERT
    (pg_temp comes first); it ends with the restore in its COMMIT message (transactional),
    with ``restore_session`` or ``finish_clean`` (no-transaction), and a rollback keeps it."""
    backend = bench.open()
    backend.ensure_tables()
    backend.run_statements(["CREATE TABLE items (id int)"], None)
    temp = ["CREATE TEMP TABLE items (id int)", "INSERT INTO items VALUES (0)"]
    backend.run_transactional(temp, change(1))
    backend.run_transactional(["INSERT INTO items VALUES (1)"], change(2))
    backend.run_statements(temp, None)
    backend.restore_session()
    backend.run_statements(["INSERT INTO items VALUES (2)"], None)
    backend.mark_dirty(change(3))
    backend.run_statements(temp, None)
    backend.finish_clean(change(3), 1)
    backend.run_statements(["INSERT INTO items VALUES (3)"], None)
    assert bench.row_count("items") == 3
    backend.run_statements(temp, None)  # a failed migration rolls back the restore with it
    fails(lambda: backend.run_transactional(["SELECT 1/0"], change(4)))
    backend.run_statements(["INSERT INTO items VALUES (4)", "INSERT INTO public.items VALUES (5)"])
    assert bench.row_count("items") == 4


def test_concurrent_index_runs_only_outside_a_transaction(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    backend.run_statements(["CREATE TABLE a (id int)"], None)
    cic = "CREATE INDEX CONCURRENTLY IF NOT EXISTS a_id ON a (id)"
    exc = fails(lambda: backend.run_transactional([cic], change(1)))
    assert (exc.index, exc.sqlstate) == (0, "25001")
    backend.run_statements([cic, cic, "DROP INDEX CONCURRENTLY IF EXISTS a_id"], None)
    exc = fails(lambda: backend.run_statements(["CREATE INDEX ON_missing ON nope (id)"], None))
    assert exc.sqlstate == "42P01"


def test_stop_check_cuts_the_migration_before_its_next_statement(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) >= 2

    exc = fails(
        lambda: backend.run_transactional(
            ["CREATE TABLE a (id int)", "CREATE TABLE b (id int)"], change(1), stop
        )
    )
    assert (exc.index, exc.cancelled, exc.connection_lost) == (1, True, False)
    assert "a" not in bench.tables() and backend.read_history() == []
    asked.clear()
    exc = fails(lambda: backend.run_statements(["SELECT 1", "CREATE TABLE c (id int)"], stop))
    assert (exc.index, exc.cancelled) == (1, True)
    assert "c" not in bench.tables()
    backend.cancel()  # nothing runs: a no-op, and the session stays usable
    backend.run_statements(["SELECT 1"], None)


def test_the_lock_check_after_commit_says_held_retaken_or_lost(bench: Bench) -> None:
    a, b = bench.open("a"), bench.open("b")
    a.ensure_tables()
    assert a.try_lock()
    assert a.run_transactional(["SELECT 1"], change(1)).lock is LockState.HELD
    done = a.run_transactional(["SELECT pg_advisory_unlock_all()"], change(2))
    assert done.lock is LockState.RETAKEN and a.holds_lock()
    calls: list[int] = []

    def steal_after_unlock() -> bool:
        calls.append(1)
        if len(calls) == 2:  # before the 2nd statement: the 1st released the lock
            assert b.try_lock()
        return False

    statements = ["SELECT pg_advisory_unlock_all()", "SELECT 1"]
    assert a.run_transactional(statements, change(3), steal_after_unlock).lock is LockState.LOST
    assert not a.holds_lock() and b.holds_lock()
    assert [r.version for r in a.read_history()] == [1, 2, 3]


def test_finish_clean_reports_the_lock(bench: Bench) -> None:
    backend = bench.open()
    backend.ensure_tables()
    assert backend.try_lock()
    backend.mark_dirty(change(1))
    backend.run_statements(["SELECT pg_advisory_unlock_all()"], None)
    assert backend.finish_clean(change(1), 3) is LockState.RETAKEN
    assert backend.holds_lock()


def test_indexes_lists_validity_and_drop_index_drops(bench: Bench) -> None:
    backend = bench.open()
    backend.run_statements(["CREATE TABLE a (id int)", "CREATE INDEX a_id ON a (id)"], None)
    assert IndexState("public.a_id", True) in backend.indexes()
    backend.drop_index("public.a_id")
    assert "public.a_id" not in {i.name for i in backend.indexes()}
    backend.drop_index("public.a_id")  # IF EXISTS: no error


# -- the session ---------------------------------------------------------------------------------


def test_check_writable_refuses_a_read_only_default(bench: Bench) -> None:
    first = bench.open()
    first.check_writable()
    first.run_statements(
        [f"ALTER DATABASE {bench.dbname} SET default_transaction_read_only = on"], None
    )
    later = bench.open()
    with pytest.raises(DatabaseUnavailable, match="read-only"):
        later.check_writable()
    with pytest.raises(DatabaseUnavailable), later.errors_translated():
        later.ensure_tables()
    assert "schema_migrations" not in bench.tables()


def test_a_closed_session_fails_as_database_unavailable(bench: Bench) -> None:
    backend = bench.open()
    backend.close()
    with pytest.raises(DatabaseUnavailable), backend.errors_translated():
        backend.read_history()
    backend.close()
