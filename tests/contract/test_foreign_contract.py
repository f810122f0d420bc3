"""The contract of the port to other tools' histories (``ForeignHistory``,
``patcher/engine/ports.py``), on the real ``PostgresBackend`` and on the fake
(``tests/fakes/foreign.py``), with the benches of ``test_backend_contract.py``: what the run's
check finds, and what ``patcher adopt`` reads and holds.
"""

from __future__ import annotations

import pytest

from patcher.core.errors import ConfigError
from patcher.engine.ports import foreign_port
from tests.contract import test_backend_contract as contract
from tests.contract.test_backend_contract import Bench, change

bench = contract.bench  # the fixture: each test runs on PostgreSQL and on the fake

GOOSE = (
    "CREATE TABLE goose_db_version (id int, version_id bigint, is_applied boolean, "
    "tstamp timestamp)"
)


def goose_rows(*rows: tuple[int, int, bool]) -> list[str]:
    insert = "INSERT INTO goose_db_version VALUES ({}, {}, {}, NULL)"
    return [insert.format(i, v, str(a).lower()) for i, v, a in rows]


def test_other_histories_finds_another_tools_table_that_records_versions(bench: Bench) -> None:
    """Issue 26 item 12 (the real backend looks in every schema of the search_path)."""
    backend = bench.open()
    foreign = foreign_port(backend)
    assert foreign.other_histories() == []
    backend.run_statements(
        ["CREATE TABLE goose_db_version (id int, version_id bigint, is_applied boolean, "
         "tstamp timestamp)"], None
    )  # fmt: skip
    assert foreign.other_histories() == []  # an empty table: nothing applied
    backend.run_statements(["INSERT INTO goose_db_version VALUES (2, 7, true, NULL)"], None)
    assert foreign.other_histories() == [("public.goose_db_version", "goose")]
    backend.ensure_tables()  # ours, under our name: never another tool's
    assert foreign.other_histories() == [("public.goose_db_version", "goose")]


def test_read_foreign_says_what_the_tool_applied_and_writes_nothing(bench: Bench) -> None:
    backend = bench.open()
    foreign = foreign_port(backend)
    assert foreign.current_schema() == "public"
    backend.run_statements([GOOSE, *goose_rows((1, 0, True), (2, 1, True), (3, 2, True))], None)
    backend.run_statements(goose_rows((4, 2, False), (5, 3, True)), None)  # 2 was rolled back
    state = foreign.read_foreign("goose", "public", "goose_db_version")
    assert (state.tool, state.applied, state.problems) == ("goose", {1, 3}, [])
    assert bench.tables() == {"goose_db_version"}


def test_read_foreign_refuses_a_missing_table_and_one_of_another_tool(bench: Bench) -> None:
    backend = bench.open()
    foreign = foreign_port(backend)
    with pytest.raises(ConfigError, match=r"no table public\.goose_db_version"):
        foreign.read_foreign("goose", "public", "goose_db_version")
    backend.run_statements([GOOSE], None)
    with pytest.raises(ConfigError, match=r"not sqlx's history table.*use --from goose"):
        foreign.read_foreign("sqlx", "public", "goose_db_version")


def test_holding_foreign_commits_what_the_block_writes_or_nothing(bench: Bench) -> None:
    backend = bench.open()
    foreign = foreign_port(backend)
    backend.run_statements([GOOSE, *goose_rows((1, 0, True), (2, 1, True))], None)
    held = foreign.holding_foreign
    with pytest.raises(RuntimeError), held("goose", "public", "goose_db_version"):
        backend.ensure_tables()
        backend.record([change(1)])
        raise RuntimeError("refused after writing")
    assert backend.read_history() == []
    with held("goose", "public", "goose_db_version") as state:
        assert state.applied == {1}
        backend.ensure_tables()
        backend.record([change(1)])
    assert [r.version for r in backend.read_history()] == [1]
    assert bench.row_count("goose_db_version") == 2  # read, never written
