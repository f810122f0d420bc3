"""The patcher command: same engine, readable report or exact JSON, exit codes, scaffolding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from patcher.cli.main import main
from tests.fixtures.engine import MigrationDir


def test_json_output_is_the_lambda_result(
    mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    assert main(["migrate", "--json", "--source", str(mdir.path), "--database-url", pg_dsn]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {
        "ok", "action", "dry_run", "status", "current_version", "migrations", "pending",
        "warnings", "error", "request_id", "duration_ms",
    }  # fmt: skip
    assert result["status"] == "applied" and result["request_id"].startswith("cli-")


def test_verified_preview_reads_as_a_report(
    mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--source", str(mdir.path), "--database-url", pg_dsn]
    mdir.pair("1", "t", "CREATE TABLE t (id int);")
    assert main(["migrate", *base]) == 0
    mdir.pair("2", "drop", "DROP TABLE t;")
    capsys.readouterr()
    assert main(["migrate", "--dry-run", "--verify", *base]) == 0
    out = capsys.readouterr().out
    assert "== 2 drop (up, transactional) ==" in out
    assert "locks on existing tables: public.t AccessExclusiveLock" in out
    assert "risk DROP_TABLE:" in out
    assert "    DROP TABLE t;" in out


def test_new_writes_the_next_numbered_pair(mdir: MigrationDir) -> None:
    mdir.pair("0041", "old", "SELECT 1;")
    assert main(["new", "Add votes table!", "--dir", str(mdir.path)]) == 0
    names = sorted(p.name for p in mdir.path.iterdir())
    assert names == [
        "0041_old.up.sql", "0042_add_votes_table.down.sql", "0042_add_votes_table.up.sql",
    ]  # fmt: skip
    assert main(["new", "irreversible", "--no-down", "--dir", str(mdir.path)]) == 0
    assert (mdir.path / "0043_irreversible.up.sql").exists()
    assert not (mdir.path / "0043_irreversible.down.sql").exists()


def test_console_script_exit_codes(tmp_path: Path, pg_dsn: str) -> None:
    def patcher(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "patcher.cli", *args], capture_output=True, text=True
        )

    empty = tmp_path / "m"
    empty.mkdir()
    assert patcher("status", "--source", str(empty), "--database-url", pg_dsn).returncode == 0
    missing = patcher("status", "--source", str(tmp_path / "nope"), "--database-url", pg_dsn)
    assert missing.returncode == 1 and "SourceUnavailable" in missing.stdout
    assert patcher("frobnicate").returncode == 2
    assert patcher("rollback", "--steps", "x").returncode == 2
