"""A corpus of 43 migrations per layout (tests/data/corpus): up, down, up again gives the schema
(and data) that applying the same SQL with psql gives, and down leaves nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.data.corpus import generate
from tests.fixtures.engine import make_runner, query, schema_snapshot
from tests.fixtures.foreign_tools import run_dbmate
from tests.fixtures.postgres import PgServer

CORPUS = Path(generate.__file__).resolve().parent
HISTORY_SCHEMA = "patcher_history"  # our tables out of public, where the snapshot looks


def snapshot(dsn: str) -> dict[str, Any]:
    shot: dict[str, Any] = schema_snapshot(dsn)
    shot["data"] = query(
        dsn,
        "SELECT 't1', count(*), sum(score) FROM t1 UNION ALL SELECT 't6', count(*), sum(score) "
        "FROM t6 UNION ALL SELECT 't4', count(*), count(t3_id) FROM t4 "
        "UNION ALL SELECT 'audit', count(*), NULL FROM audit",
    )
    return shot


def psql_apply(dsn: str) -> None:
    """Each up script as psql runs it (autocommit, statement by statement)."""
    for n, step in enumerate(generate.steps(), 1):
        done = subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", "-"],
            input=step.up, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"psql failed at step {n}: {done.stderr}"


def test_the_committed_corpus_is_what_the_generator_writes() -> None:
    for layout in generate.LAYOUTS:
        on_disk = {p.name: p.read_text() for p in (CORPUS / layout).iterdir()}
        assert on_disk == generate.files(layout), (
            f"run python -m tests.data.corpus.generate ({layout})"
        )


@pytest.fixture(scope="module")
def psql_snapshot(pg_server: PgServer) -> dict[str, Any]:
    name = pg_server.create_database()
    try:
        dsn = pg_server.dsn_for(name)
        psql_apply(dsn)
        return snapshot(dsn)
    finally:
        pg_server.drop_database(name)


@pytest.mark.parametrize("layout", generate.LAYOUTS)
def test_corpus_up_down_up_equals_psql(
    pg_dsn: str, layout: str, psql_snapshot: dict[str, Any]
) -> None:
    run = make_runner(pg_dsn, CORPUS / layout, schema=HISTORY_SCHEMA)  # layout: auto
    count = len(generate.steps())
    up = run("migrate")
    assert up["ok"], up["error"]
    assert len(up["migrations"]) == count >= 40
    assert sum(not m["transactional"] for m in up["migrations"]) == 3
    first = snapshot(pg_dsn)
    assert first == psql_snapshot
    down = run("rollback", target=0)
    assert down["ok"], down["error"]
    assert len(down["migrations"]) == count
    empty = schema_snapshot(pg_dsn)
    assert all(not rows for rows in empty.values()), empty
    again = run("migrate")
    assert again["ok"], again["error"]
    assert snapshot(pg_dsn) == psql_snapshot


def test_the_real_dbmate_reads_the_dbmate_corpus_as_we_do(
    pg_dsn: str, psql_snapshot: dict[str, Any]
) -> None:
    """dbmate itself applies the corpus to the same schema; we adopt its history and revert."""
    run_dbmate(pg_dsn, CORPUS / "dbmate", "up")
    run = make_runner(pg_dsn, CORPUS / "dbmate", schema=HISTORY_SCHEMA)
    adopted = run("adopt", adopt_from="dbmate")
    assert adopted["ok"], adopted["error"]
    assert len(adopted["migrations"]) == len(generate.steps())
    query(pg_dsn, "DROP TABLE public.schema_migrations")  # as the adopt result advises
    assert snapshot(pg_dsn) == psql_snapshot
    assert run("migrate")["status"] == "up_to_date"
    down = run("rollback", target=0)
    assert down["ok"], down["error"]
    assert all(not rows for rows in schema_snapshot(pg_dsn).values())
