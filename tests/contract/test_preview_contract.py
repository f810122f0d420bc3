"""The contract of the preview port (``PreviewBackend``, ``patcher/engine/ports.py``): table
sizes, verification and data at risk, on the real ``PostgresBackend`` and on the fake where it
implements them (``tests/fakes/preview.py``), with the benches of ``test_backend_contract.py``.
The preview port is the run's session seen through ``preview_port``.
"""

from __future__ import annotations

from patcher.core.data_loss import Probe
from patcher.engine.ports import preview_port
from tests.contract import test_backend_contract as contract
from tests.contract.test_backend_contract import Bench

bench = contract.bench  # the fixture: each test runs on PostgreSQL and on the fake


def test_table_sizes_are_estimates_minus_one_until_analysed(bench: Bench) -> None:
    session = bench.open()
    backend = preview_port(session)  # the same session
    session.run_statements(["CREATE TABLE a (id int)", "INSERT INTO a VALUES (1), (2), (3)"], None)
    assert backend.table_sizes()["public.a"] == -1
    session.run_statements(["ANALYZE a"], None)
    assert backend.table_sizes()["public.a"] == 3


def test_verify_reports_locks_and_rewrites_and_rolls_everything_back(bench: Bench) -> None:
    session = bench.open()
    backend = preview_port(session)  # the same session
    session.run_statements(["CREATE TABLE t (id int)"], None)
    reports = backend.verify(
        [
            ["INSERT INTO t VALUES (1)", "CREATE TABLE n (id int)"],
            ["ALTER TABLE t ALTER COLUMN id TYPE bigint"],
        ],
        2000,
    )
    assert [r.failure for r in reports] == [None, None]
    assert reports[0].locks == [("public.t", "RowExclusiveLock")]
    assert reports[0].rewrites == []
    assert ("public.t", "AccessExclusiveLock") in reports[1].locks
    assert reports[1].rewrites == ["public.t"]
    assert bench.tables() == {"t"}
    assert bench.row_count("t") == 0


def test_verify_stops_at_the_first_failure_and_leaves_nothing(bench: Bench) -> None:
    session = bench.open()
    backend = preview_port(session)  # the same session
    reports = backend.verify(
        [["CREATE TABLE a (id int)"], ["SELECT 1", "SELECT 1/0"], ["SELECT 1"]], 2000
    )
    assert len(reports) == 2
    failure = reports[1].failure
    assert failure is not None and (failure.index, failure.sqlstate) == (1, "22012")
    assert "a" not in bench.tables()
    session.ensure_tables()  # the session is usable afterwards
    assert session.read_history() == []


def test_data_at_risk_counts_and_measures_a_dropped_table_and_leaves_it(bench: Bench) -> None:
    session = bench.open()
    backend = preview_port(session)  # the same session
    session.ensure_tables()
    session.run_statements(
        ["CREATE TABLE t (id int)", "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)"], None
    )
    counted = backend.estimate_at_risk([Probe("drop", None, "t")], 1, 1000, 5000)
    assert [(x.relation, x.column, x.change, x.rows) for x in counted] == [
        ("public.t", None, "drop", 2)
    ]
    losses, failure = backend.measure_at_risk([["DROP TABLE t"]], [1], [[]], 2000)
    assert failure is None
    assert [(x.relation, x.change, x.rows) for x in losses[0]] == [("public.t", "drop", 2)]
    assert bench.tables() >= {"t"} and bench.row_count("t") == 2
    losses, failure = backend.measure_at_risk(
        [["SELECT 1"], ["SELECT 1/0"]], [2, 1], [[], []], 2000
    )
    assert losses == [[]] and failure is not None and failure.sqlstate == "22012"
    assert session.read_history() == []  # the session is usable afterwards
