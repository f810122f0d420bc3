"""Batched apply and rollback on a real PostgreSQL through the CLI: a failure in the 3rd
migration of a batch leaves the first two applied with their history rows, the 3rd absent and
the rest not run, and the error names the file, line and column, whether the server reports it
while running (with or without a position) or while parsing the whole message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from patcher.cli.main import main
from patcher.db.backend import PostgresBackend
from tests.fixtures.engine import MigrationDir, history, query, tables

BAD = {
    "runtime, with a position": ("SELECT 1;\n\nINSERT INTO missing VALUES (1);\n", 3, 13, 2),
    "runtime, no position": ("SELECT 1;\nSELECT 2,\n  1/0;\n", 2, 1, 2),
    "parse error of the whole message": ("SELECT 1;\nCREATE TABEL x (id int);\n", 2, 8, 2),
}


def cli(mdir: MigrationDir, dsn: str, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    main([*args, "--json", "--source", str(mdir.path), "--database-url", dsn])
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch the real backend is asked to run."""
    sizes: list[int] = []
    original = PostgresBackend.run_batch

    def counted(self: PostgresBackend, items: Any, *args: Any, **kwargs: Any) -> Any:
        sizes.append(len(items))
        return original(self, items, *args, **kwargs)

    monkeypatch.setattr(PostgresBackend, "run_batch", counted)
    return sizes


@pytest.mark.parametrize("bad", list(BAD))
def test_a_failure_in_the_third_migration_of_a_batch(
    mdir: MigrationDir,
    pg_dsn: str,
    capsys: pytest.CaptureFixture[str],
    batches: list[int],
    bad: str,
) -> None:
    text, line, column, statement = BAD[bad]
    for v in (1, 2, 4, 5):
        mdir.pair(str(v), f"t{v}", f"CREATE TABLE t{v} (id int);\n", f"DROP TABLE t{v};\n")
    mdir.pair("3", "bad", f"CREATE TABLE t3 (id int);\n{text}")
    result = cli(mdir, pg_dsn, capsys, "migrate")
    assert batches[0] == 5, batches
    assert (result["status"], result["error"]["type"]) == ("failed", "MigrationFailed")
    assert [(m["version"], m["state"]) for m in result["migrations"]] == [
        (1, "applied"), (2, "applied"), (3, "failed"), (4, "not_run"), (5, "not_run"),
    ]  # fmt: skip
    error = result["error"]
    assert (error["file"], error["line"], error["column"]) == ("3_bad.up.sql", line + 1, column)
    assert error["statement"] == statement + 1
    assert f"3_bad.up.sql line {line + 1}, column {column}" in error["message"]
    assert history(pg_dsn) == [(1, False), (2, False)]
    assert {"t1", "t2"} <= tables(pg_dsn) and not {"t3", "t4", "t5"} & tables(pg_dsn)
    log = query(pg_dsn, "SELECT version, outcome FROM schema_migrations_log ORDER BY id")
    assert log == [(1, "applied"), (2, "applied"), (3, "failed")]
    assert [m["version"] for m in result["pending"]] == [3, 4, 5]


def test_batched_apply_and_rollback_record_server_clock_durations(
    mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str], batches: list[int]
) -> None:
    mdir.pair("1", "slow", "SELECT pg_sleep(0.2);\n", "SELECT pg_sleep(0.1);\n")
    for v in (2, 3):
        mdir.pair(str(v), f"t{v}", f"CREATE TABLE t{v} (id int);\n", f"DROP TABLE t{v};\n")
    result = cli(mdir, pg_dsn, capsys, "migrate")
    assert result["status"] == "applied" and batches == [3]
    took = {m["version"]: m["duration_ms"] for m in result["migrations"]}
    assert 200 <= took[1] < 1000 and took[2] < 200
    rows = query(pg_dsn, "SELECT version, execution_ms FROM schema_migrations ORDER BY version")
    assert dict(rows) == took
    result = cli(mdir, pg_dsn, capsys, "rollback", "--target", "0")
    assert result["status"] == "reverted" and batches == [3, 3]
    assert history(pg_dsn) == [] and not {"t2", "t3"} & tables(pg_dsn)
    assert result["migrations"][-1]["duration_ms"] >= 100  # version 1's down, reverted last
