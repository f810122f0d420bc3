"""The ground-truth harness (bench/ground_truth.py) on a tiny corpus and a real database:
what it measures is what PostgreSQL did, and its precision and recall add up."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bench import ground_truth
from bench.ground_truth import Record, collect, report, score
from tests.fixtures.engine import MigrationDir

T = "public.t"


@pytest.fixture
def records(mdir: MigrationDir, pg_dsn: str) -> list[Record]:
    mdir.pair("1", "create", """
CREATE TABLE t (id int, name varchar(10), note text);
CREATE TABLE u (id int PRIMARY KEY);
INSERT INTO t SELECT g, 'n' || g, 'x' FROM generate_series(1, 100) g;""")  # fmt: skip
    mdir.pair("2", "widen_id", "ALTER TABLE t ALTER COLUMN id TYPE bigint;")
    mdir.pair("3", "index", "CREATE INDEX t_name ON t (name);")
    mdir.pair("4", "longer_name", "ALTER TABLE t ALTER COLUMN name TYPE varchar(20);")
    mdir.write("5_vacuum.up.sql", "-- patcher:no-transaction\nVACUUM FULL t;\n")
    return collect(mdir.path, pg_dsn)


def test_what_postgresql_did_is_measured_per_migration(records: list[Record]) -> None:
    measured = [(r.version, r.transactional, r.rewrites, r.locks) for r in records]
    assert measured == [
        (1, True, frozenset(), frozenset()),  # new tables: nothing that existed before
        (2, True, {T}, {T}),  # int -> bigint: a rewrite under ACCESS EXCLUSIVE
        (3, True, frozenset(), frozenset()),  # CREATE INDEX: SHARE, no rewrite
        (4, True, frozenset(), {T}),  # a longer varchar: the lock, no rewrite
        (5, False, {T}, None),  # VACUUM FULL: storage changed; its locks are not measured
    ]
    widen = records[1]
    assert (widen.claimed_rewrites, widen.claimed_locks) == ({T}, {T})  # the dry run's claims
    assert records[2].claimed_rewrites == records[2].claimed_locks == frozenset()
    assert records[0].file == "0001_create"


def test_precision_and_recall_count_every_claim(records: list[Record]) -> None:
    exact = [
        dataclasses.replace(r, claimed_rewrites=r.rewrites or frozenset(), claimed_locks=r.locks)
        for r in records
        if r.locks is not None
    ]
    for kind in ("rewrites", "locks"):
        s = score(exact, kind)
        assert (s.precision, s.recall, s.false, s.missed) == (1.0, 1.0, [], [])
    assert (score(exact, "rewrites").true, score(exact, "locks").true) == (1, 2)

    widen, longer = exact[1], exact[3]
    missed_one = [*exact[:3], dataclasses.replace(longer, claimed_locks=frozenset())]
    locks = score(missed_one, "locks")
    assert (locks.true, locks.claimed, locks.measured, locks.recall) == (1, 1, 2, 0.5)
    assert locks.precision == 1.0 and locks.missed == [(missed_one[3], T)]

    bogus = dataclasses.replace(widen, claimed_rewrites=frozenset({T, "public.u"}))
    rewrites = score([bogus, *exact[2:]], "rewrites")
    assert rewrites.false == [(bogus, "public.u")] and rewrites.missed == []
    assert rewrites.precision == pytest.approx(1 / 2) and rewrites.recall == 1.0

    vacuum = dataclasses.replace(records[4], claimed_locks=frozenset({T}))
    assert score([vacuum], "locks").unmeasured == 1  # claimed, not measurable: not scored
    assert score([vacuum], "locks").precision is None


def test_the_report_prints_the_table_and_names_each_miss(records: list[Record]) -> None:
    widen = records[1]
    missed = dataclasses.replace(widen, claimed_rewrites=frozenset())
    text = report([records[0], missed, *records[2:]])
    rewrites = score([records[0], missed, *records[2:]], "rewrites")
    row = next(line for line in text.splitlines() if line.startswith("rewrites"))
    assert row.split() == [
        "rewrites", str(rewrites.measured), str(rewrites.claimed), str(rewrites.true),
        str(len(rewrites.false)), "1", *ground_truth._pct(rewrites.precision).split(),
        *ground_truth._pct(rewrites.recall).split(),
    ]  # fmt: skip
    assert "missed rewrites (happened, not claimed): 1\n  0002_widen_id" in text
    assert text.splitlines()[1].startswith("  4 verified in a rolled-back run; 1 no-transaction")


def test_the_command_writes_the_figures_as_json(
    mdir: MigrationDir, pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mdir.pair("1", "create", "CREATE TABLE t (id int);")
    mdir.pair("2", "widen", "ALTER TABLE t ALTER COLUMN id TYPE bigint;")
    out = tmp_path / "gt.json"
    args = ["--corpus", str(mdir.path), "--database-url", pg_dsn, "--json", str(out)]
    assert ground_truth.main(args) == 0
    figures = json.loads(out.read_text())
    assert figures["migrations"] == 2
    assert figures["rewrites"]["measured"] == 1 and figures["locks"]["measured"] == 1
    assert "ACCESS EXCLUSIVE locks" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="must name an empty database"):
        ground_truth.main(args)  # the tables are there now: refused, nothing run
