"""Bad sources, through the CLI and the engine against the real PostgreSQL: each a clear
``InvalidSource`` (or ``ConfigError``) naming the file, before anything runs; never a traceback,
a hang on a FIFO, or ``applied`` for work that never committed. And repair's own words."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from patcher.sources.local import LocalSource
from tests.fixtures.engine import MigrationDir, Run, history, make_runner, query, tables
from tests.fixtures.postgres import PgServer


def cli_json(source: Path, dsn: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """``patcher <args> --json`` in a subprocess (a hang is a failure, not a stuck suite)."""
    done = subprocess.run(
        [sys.executable, "-m", "patcher.cli", *args, "--json", "--source", str(source),
         "--database-url", dsn],
        capture_output=True, timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
    return done.returncode, json.loads(done.stdout)


def test_a_non_utf8_file_name_is_invalid_source_naming_its_bytes(
    mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    os.close(os.open(os.fsencode(mdir.path) + b"/2_caf\xe9.up.sql", os.O_CREAT | os.O_WRONLY))
    os.close(os.open(os.fsencode(mdir.path) + b"/READ\xffME.md", os.O_CREAT | os.O_WRONLY))
    for args in (("migrate",), ("migrate", "--dry-run"), ("status",)):
        code, result = cli_json(mdir.path, pg_dsn, *args)
        assert code == 1 and result["status"] == "invalid"
        assert result["error"]["type"] == "InvalidSource"
        message = result["error"]["message"]
        assert r"b'2_caf\xe9.up.sql' is not valid UTF-8" in message
        assert r"b'READ\xffME.md'" in message
        assert result["error"]["file"] == r"b'2_caf\xe9.up.sql'"
    assert tables(pg_dsn) == set()


def _symlink(mdir: MigrationDir, tmp_path: Path) -> str:
    outside = tmp_path / "elsewhere.sql"
    outside.write_text("CREATE TABLE evil (id int);")
    (mdir.path / "2_b.up.sql").symlink_to(outside)
    return "a symbolic link"


def _dir_symlink(mdir: MigrationDir, tmp_path: Path) -> str:
    (tmp_path / "sub").mkdir()
    (mdir.path / "2_b.up.sql").symlink_to(tmp_path / "sub")
    return "a symbolic link"


def _fifo(mdir: MigrationDir, tmp_path: Path) -> str:
    os.mkfifo(mdir.path / "2_b.up.sql")
    return "a FIFO"


def _socket(mdir: MigrationDir, tmp_path: Path) -> str:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(mdir.path / "2_b.up.sql"))
    sock.close()
    return "a socket"


@pytest.mark.parametrize("make", [_symlink, _dir_symlink, _fifo, _socket])
def test_links_and_special_files_are_refused_before_anything_runs(
    mdir: MigrationDir, pg_dsn: str, tmp_path: Path, make: Callable[..., str]
) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    kind = make(mdir, tmp_path)
    for args in (("migrate",), ("migrate", "--dry-run")):
        code, result = cli_json(mdir.path, pg_dsn, *args)
        assert code == 1 and result["status"] == "invalid"
        assert result["error"]["type"] == "InvalidSource"
        assert f"'2_b.up.sql' is {kind}" in result["error"]["message"]
        assert result["error"]["file"] == "'2_b.up.sql'"
    assert tables(pg_dsn) == set()


@pytest.fixture
def fifo_watch(mdir: MigrationDir) -> Iterator[list[str]]:
    """A FIFO in the source, and a thread that notices if anyone ever opens it for reading
    (a non-blocking open for writing succeeds only while a reader has it open)."""
    fifo = mdir.path / "3_c.up.sql"
    os.mkfifo(fifo)
    opened: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                opened.append("a reader opened the FIFO")
                return
            except OSError:
                stop.wait(0.001)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    yield opened
    stop.set()
    thread.join(5)


def test_a_fifo_is_never_opened(
    run: Run, mdir: MigrationDir, pg_dsn: str, fifo_watch: list[str]
) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    for action, fields in (("migrate", {}), ("migrate", {"dry_run": True}), ("status", {})):
        result = run(action, **fields)
        assert result["error"]["type"] == "InvalidSource" and "a FIFO" in result["error"]["message"]
    assert fifo_watch == []
    assert tables(pg_dsn) == set()


def test_a_local_script_over_the_size_cap_is_refused_before_any_read(
    mdir: MigrationDir, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mdir.pair("1", "small", "CREATE TABLE small (id int);")
    mdir.write("2_big.up.sql", "SELECT 1;\n" * 20_000)  # 200,000 bytes
    reads: list[str] = []
    real_read = LocalSource.read

    def counting(self: LocalSource, obj: Any) -> bytes:
        reads.append(obj.name)
        return real_read(self, obj)

    monkeypatch.setattr(LocalSource, "read", counting)
    run = make_runner(pg_dsn, mdir.path, max_script_mb=0.1)  # 104,857 bytes
    result = run("migrate")
    assert (result["status"], result["error"]["type"]) == ("invalid", "InvalidSource")
    assert "'2_big.up.sql' is 200,000 bytes" in result["error"]["message"]
    assert result["error"]["size"] == 200_000 and reads == []
    assert tables(pg_dsn) == set()
    # The environment variable, through the CLI; the default (100 MB) lets it through.
    code, refused = cli_json(mdir.path, pg_dsn, "migrate", env={"PATCHER_MAX_SCRIPT_MB": "0.1"})
    assert code == 1 and "more than PATCHER_MAX_SCRIPT_MB" in refused["error"]["message"]
    code, applied = cli_json(mdir.path, pg_dsn, "migrate")
    assert code == 0 and applied["status"] == "applied"


CONTROL = [
    "BEGIN;",
    "begin isolation level serializable;",
    "START TRANSACTION;",
    "COMMIT;",
    "END;",
    "ROLLBACK;",
    "ABORT;",
    "SAVEPOINT s;",
    "RELEASE SAVEPOINT s;",
    "ROLLBACK TO SAVEPOINT s;",
    "PREPARE TRANSACTION 'p';",
    "COMMIT PREPARED 'p';",
    "ROLLBACK PREPARED 'p';",
]


@pytest.mark.parametrize("directive", [False, True], ids=["transactional", "no-transaction"])
@pytest.mark.parametrize("control", CONTROL)
def test_transaction_control_is_refused_in_every_script(
    run: Run, mdir: MigrationDir, pg_dsn: str, control: str, directive: bool
) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    head = "-- patcher:no-transaction\n" if directive else ""
    mdir.write(
        "2_b.up.sql", f"{head}CREATE TABLE b (id int);\n{control}\nINSERT INTO b VALUES (1);"
    )
    line = 3 if directive else 2
    for dry_run in (True, False):
        result = run("migrate", dry_run=dry_run)
        assert (result["status"], result["error"]["type"]) == ("invalid", "InvalidSource")
        assert result["error"]["message"].startswith(f"2_b.up.sql line {line}: ")
        assert "transaction control" in result["error"]["message"]
        assert (result["error"]["file"], result["error"]["line"]) == ("2_b.up.sql", line)
    assert tables(pg_dsn) == set(), "nothing ran, not even version 1"


def test_begin_without_commit_in_a_no_transaction_script_is_never_reported_applied(
    mdir: MigrationDir, pg_dsn: str
) -> None:
    """The original lie: ``applied`` while the INSERT sat in a transaction nobody committed."""
    mdir.write(
        "1_a.up.sql",
        "-- patcher:no-transaction\nCREATE TABLE a (id int);\nBEGIN;\nINSERT INTO a VALUES (1);",
    )
    code, result = cli_json(mdir.path, pg_dsn, "migrate")
    assert code == 1 and result["error"]["type"] == "InvalidSource"
    assert "BEGIN is transaction control" in result["error"]["message"]
    assert "also with '-- patcher:no-transaction'" in result["error"]["message"]
    assert tables(pg_dsn) == set()


def test_bodies_that_mention_commit_still_run(
    run: Run, mdir: MigrationDir, pg_dsn: str, pg_server: PgServer
) -> None:
    mdir.write(
        "1_a.up.sql",
        "CREATE TABLE a (note text);\n"
        "INSERT INTO a VALUES ('BEGIN; COMMIT; SAVEPOINT s');\n"
        "DO $$ BEGIN PERFORM 1; END $$;\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\n",
    )
    result = run("migrate")
    if pg_server.server_version < 140000:
        # BEGIN ATOMIC bodies are PG 14+: PG 13 itself refuses the script, so the runner did
        # not take the BEGIN for transaction control (that would be InvalidSource, unsent).
        assert result["status"] == "failed", result
        message = result["error"]["message"]
        assert "(statement 4): syntax error" in message, result["error"]
        return
    assert result["status"] == "applied"
    assert query(pg_dsn, "SELECT note FROM a") == [("BEGIN; COMMIT; SAVEPOINT s",)]


def test_repair_says_what_it_will_do_for_a_dirty_up(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.write(
        "1_a.up.sql",
        "-- patcher:no-transaction\nCREATE TABLE a (id int);\nSELECT 1 / 0;",
    )
    assert run("migrate")["status"] == "failed"
    refused = run("migrate")
    message = refused["error"]["message"]
    assert refused["error"]["type"] == "DirtyDatabase"
    assert "finish or undo it by hand" not in message
    assert "Repair will remove its history row: the version becomes pending" in message
    assert "the next migrate re-runs the whole up script" in message
    assert "undo what it half-did, or make the script safe to run again" in message
    # What it said is what happens: repair, then migrate re-runs the script from the top.
    assert run("repair")["status"] == "applied"
    assert history(pg_dsn) == []
    again = run("migrate")
    assert again["status"] == "failed" and 'relation "a" already exists' in str(again["error"])
    run("repair")
    mdir.write("1_a.up.sql", "-- patcher:no-transaction\nCREATE TABLE IF NOT EXISTS a (id int);")
    assert run("migrate")["status"] == "applied"


def test_repair_says_what_it_will_do_for_a_dirty_down(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.pair(
        "1",
        "a",
        "CREATE TABLE a (id int); CREATE TABLE b (id int);",
        "-- patcher:no-transaction\nDROP TABLE a;\nSELECT 1 / 0;\nDROP TABLE b;",
    )
    assert run("migrate")["status"] == "applied"
    assert run("rollback")["status"] == "failed"
    refused = run("rollback")
    message = refused["error"]["message"]
    assert refused["error"]["type"] == "DirtyDatabase"
    assert "Repair will clear the mark: the version is applied again" in message
    assert "the next rollback re-runs the whole down script" in message
    assert run("repair")["status"] == "applied"
    assert history(pg_dsn) == [(1, False)]
    again = run("rollback")
    assert again["status"] == "failed" and 'table "a" does not exist' in str(again["error"])
