"""The contract of the backfill port (``patcher/engine/backfill_port.py``) on PostgreSQL and on
the fake (``tests/fakes/backfill.py``), with the benches of ``test_backend_contract.py``.

What the fake cannot express is held on PostgreSQL only, at the end of this file: a primary key
read from the catalog of a table made by SQL (the fake's CREATE TABLE has no keys; the fake
declares one with ``FakeDatabase.backfill_table``), composite and text keys, statements other
than ``UPDATE t SET c = c + 1`` (INSERT ... SELECT, DELETE), and the replicas' lag of a real
server (``tests/integration/test_backfill_replica.py``).
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from patcher.core.backfill import Checkpoint, RangeJob
from patcher.core.errors import StatementFailed
from patcher.engine.backfill_port import backfill_port
from patcher.engine.ports import MigrationBackend
from tests.contract import test_backend_contract as contract
from tests.contract.test_backend_contract import Bench, FakeBench, PostgresBench, change

bench = contract.bench

_TEMPLATE = 'UPDATE "items" SET n = n + 1 WHERE __patcher_backfill_range__'


def _table(bench: Bench, rows: int) -> None:
    if isinstance(bench, FakeBench):
        bench.db.backfill_table("items", rows)
        return
    assert isinstance(bench, PostgresBench)
    with psycopg.connect(bench.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, n integer NOT NULL DEFAULT 0)")
        conn.execute("INSERT INTO items SELECT g, 0 FROM generate_series(1, %s) g", (rows,))


def _counters(bench: Bench) -> dict[int, int]:
    if isinstance(bench, FakeBench):
        rows: list[dict[str, Any]] = bench.db.rows("items")
        return {r["id"]: r["n"] for r in rows}
    assert isinstance(bench, PostgresBench)
    return {r["id"]: r["n"] for r in bench._query("SELECT id, n FROM items")}


def _job(session: MigrationBackend, after: tuple[str, ...] | None, point: Checkpoint) -> RangeJob:
    key = backfill_port(session).key_of('"items"')
    assert key is not None
    return RangeJob('"items"', '"items"', _TEMPLATE, key, after, 4, point, change(7))


def test_key_of_reads_the_primary_key_and_none_for_a_missing_table(bench: Bench) -> None:
    _table(bench, 10)
    port = backfill_port(bench.open())
    key = port.key_of('"items"')
    assert key is not None and key.columns == ("id",) and key.types == ("bigint",)
    assert key.rows_estimated == 10
    assert port.key_of('"missing"') is None


def test_ranges_advance_the_checkpoint_and_the_last_records_the_version(bench: Bench) -> None:
    _table(bench, 10)
    session = bench.open()
    session.ensure_tables()
    port = backfill_port(session)
    assert port.checkpoint(7) is None
    point = Checkpoint(7, "sum7", None, 0, 0, 10)
    done = port.run_range(_job(session, None, point))
    assert (done.last_key, done.rows, done.final) == (("4",), 4, False)
    saved = port.checkpoint(7)
    assert saved == Checkpoint(7, "sum7", ("4",), 4, 1, 10)
    assert session.read_history() == []
    done = port.run_range(_job(session, ("4",), saved))
    assert done.last_key == ("8",)
    saved = port.checkpoint(7)
    assert saved is not None
    done = port.run_range(_job(session, ("8",), saved))
    assert (done.last_key, done.rows, done.final) == (None, 2, True)
    assert port.checkpoint(7) is None  # gone with the last range, which recorded the version
    assert [r.version for r in session.read_history()] == [7]
    assert set(_counters(bench).values()) == {1}
    assert [r["outcome"] for r in bench.log_rows()] == ["applied"]


def test_a_failed_range_leaves_nothing_not_even_its_checkpoint(bench: Bench) -> None:
    _table(bench, 10)
    session = bench.open()
    session.ensure_tables()
    port = backfill_port(session)
    point = Checkpoint(7, "sum7", None, 0, 0, 10)
    port.run_range(_job(session, None, point))
    saved = port.checkpoint(7)
    assert saved is not None
    bad = RangeJob(
        '"items"', '"items"', _TEMPLATE.replace("n + 1", "n + 1/0"), _job(session, None, saved).key,
        ("4",), 4, saved, change(7),
    )  # fmt: skip
    if isinstance(bench, FakeBench):  # the fake's statements: a fault on the range instead
        bench.db.fail_statement("UPDATE", error="deadlock")
        bad = _job(session, ("4",), saved)
    with pytest.raises(StatementFailed):
        port.run_range(bad)
    assert port.checkpoint(7) == saved
    assert sorted(_counters(bench).values()) == [0] * 6 + [1] * 4


def test_first_range_is_the_statement_with_literal_bounds(bench: Bench) -> None:
    _table(bench, 10)
    session = bench.open()
    text = backfill_port(session).first_range(
        _job(session, ("4",), Checkpoint(7, "s", ("4",), 4, 1, 10))
    )
    assert text.startswith('UPDATE "items" SET n = n + 1 WHERE (')
    assert "4" in text and "8" in text and "__patcher" not in text
    assert set(_counters(bench).values()) == {0}  # nothing ran


def test_replica_lag_is_none_without_replicas(bench: Bench) -> None:
    assert backfill_port(bench.open()).replica_lag_ms() is None


# -- PostgreSQL only: what the fake cannot express ---------------------------------------------


@pytest.mark.db
def test_composite_text_keys_range_in_key_order(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE pairs (a text, b int, n int NOT NULL DEFAULT 0, PRIMARY KEY (a, b))"
        )
        conn.execute(
            "INSERT INTO pairs (a, b) "
            "SELECT chr(97 + g % 3) || ' x''y', g FROM generate_series(1, 11) g"
        )
    pg = PostgresBench(pg_dsn)
    session = pg.open()
    session.ensure_tables()
    port = backfill_port(session)
    key = port.key_of('"pairs"')
    assert key is not None and key.columns == ("a", "b") and key.types == ("text", "integer")
    template = 'UPDATE "pairs" AS p SET n = n + 1 WHERE __patcher_backfill_range__'
    point, after, ranges = Checkpoint(3, "s", None, 0, 0, 11), None, 0
    while True:
        job = RangeJob('"pairs"', '"p"', template, key, after, 3, point, change(3))
        done = port.run_range(job)
        ranges += 1
        if done.final:
            break
        after = done.last_key
        saved = port.checkpoint(3)
        assert saved is not None
        point = saved
    assert ranges == 4
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT n, count(*) FROM pairs GROUP BY n").fetchall() == [(1, 11)]
    pg.close()
