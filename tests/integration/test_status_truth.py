"""What ``status`` and ``repair`` show is the truth (issue 28 items 1, 2 and 4), through the real
``patcher`` process: a dirty version shows ``dirty`` with its file's mode and is not the current
version; a no-transaction script still running shows ``running`` with the lock holder, and no
one is told to repair it; a repair dry run shows each change and the file's mode, and a repair
that makes a version pending lists it in ``pending``; a run that never read the history says the
current version is unknown, and why, instead of "none" and "pending: none"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from patcher.db import lock_key
from tests.fixtures.engine import MigrationDir, history, query

NO_TX_FAILS = (
    "-- patcher:no-transaction\n"
    "CREATE INDEX CONCURRENTLY votes_post_idx ON votes (post_id);\n"
    "CREATE INDEX CONCURRENTLY bad_idx ON nope (x);\n"
)
NO_TX_INVALID = (  # its unique build fails on duplicates and leaves an INVALID index
    "-- patcher:no-transaction\n"
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS votes_post_idx ON votes (post_id);\n"
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS votes_one_per_post ON votes (post_id);\n"
)
GATE = 4242  # an advisory lock the test holds: the no-transaction script waits on it
NO_TX_WAITS = (
    "-- patcher:no-transaction\n"
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS votes_post_idx ON votes (post_id);\n"
    f"SELECT pg_advisory_lock({GATE});\n"
    f"SELECT pg_advisory_unlock({GATE});\n"
)
INVALID = "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid"
ENV = {"PATCHER_LOCK_TIMEOUT": "60s"}  # the gate wait must not hit the lock_timeout


def patcher(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "patcher.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV, **(env or {})},
        timeout=120,
    )


def as_json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def three(mdir: MigrationDir, second: str) -> None:
    mdir.pair("1", "create_votes", "CREATE TABLE votes (id int, post_id int);", "DROP TABLE votes;")
    mdir.write("2_index_votes.up.sql", second)
    mdir.write("2_index_votes.down.sql", "DROP INDEX CONCURRENTLY IF EXISTS votes_post_idx;\n")
    mdir.pair("3", "tags", "CREATE TABLE tags (id int);")


def states(result: dict[str, Any]) -> list[tuple[int, str, bool | None]]:
    return [(m["version"], m["state"], m.get("transactional")) for m in result["migrations"]]


def test_status_shows_a_dirty_version_as_dirty_with_its_files_mode(
    mdir: MigrationDir, pg_dsn: str
) -> None:
    three(mdir, NO_TX_FAILS)
    base = ("--source", str(mdir.path), "--database-url", pg_dsn)
    assert patcher("migrate", *base).returncode == 1  # version 2 fails half-way: dirty
    assert history(pg_dsn) == [(1, False), (2, True)]

    result = as_json(patcher("status", "--json", *base))

    assert states(result) == [(1, "applied", True), (2, "dirty", False)]
    assert result["current_version"] == 1  # the dirty version is not current
    assert [p["version"] for p in result["pending"]] == [3]
    assert result["error"]["type"] == "DirtyDatabase"  # what to do about it, repair included
    assert "duration_ms" not in result["migrations"][1]  # it never finished
    text = patcher("status", *base).stdout
    assert "current version 1 " in text and "pending: 3 tags" in text
    assert line_of(text, "1")[:5] == ["1", "create_votes", "up", "applied", "yes"]
    assert line_of(text, "2") == ["2", "index_votes", "up", "dirty", "no"]  # no duration


def line_of(text: str, version: str) -> list[str]:
    return next(line.split() for line in text.splitlines() if line.startswith(f"{version} "))


@pytest.fixture
def gate(pg_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A session holding the GATE advisory lock until the test lets go of it."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (GATE,))
        yield conn


def wait_until(check: Any, what: str, limit: float = 30.0) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def test_a_running_no_transaction_script_shows_running_with_its_holder(
    mdir: MigrationDir, pg_dsn: str, gate: psycopg.Connection[Any]
) -> None:
    three(mdir, NO_TX_WAITS)
    base = ("--source", str(mdir.path), "--database-url", pg_dsn)
    assert patcher("migrate", "--target", "1", *base).returncode == 0
    run = subprocess.Popen(
        [sys.executable, "-m", "patcher.cli", "migrate", "--target", "2", "--json", *base],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **ENV},
    )
    try:
        waiting = wait_until(
            lambda: query(
                pg_dsn,
                "SELECT pid, application_name FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND application_name LIKE 'stackflowpatcher:%%'",
            ),
            "the run to wait at the gate, in version 2",
        )
        (pid, app), *_ = waiting
        assert history(pg_dsn) == [(1, False), (2, True)]  # marked dirty while it runs

        result = as_json(patcher("status", "--json", *base))
        assert states(result) == [(1, "applied", True), (2, "running", False)]
        running = result["migrations"][1]
        assert running["holder"]["pid"] == pid and running["holder"]["application_name"] == app
        assert running["holder"]["since"]
        assert (result["ok"], result["status"], result["current_version"]) == (True, "planned", 1)
        assert [p["version"] for p in result["pending"]] == [3]
        said = json.dumps(result["warnings"])
        assert "version 2 (index_votes) is running" in said and f"pid {pid} ({app}" in said
        assert "repair" not in said.lower()

        text = patcher("status", *base)
        assert text.returncode == 0 and line_of(text.stdout, "2")[3:5] == ["running", "no"]
        assert "repair" not in text.stdout.lower()
        dry = patcher("migrate", "--dry-run", "--json", *base)
        refused = as_json(dry)["error"]
        assert refused["type"] == "DirtyDatabase" and "is running" in refused["message"]
        assert "repair" not in refused["message"].lower()
        assert f"pg_terminate_backend({pid})" in refused["message"]
        repair = as_json(patcher("repair", "--dry-run", "--json", *base))
        assert repair["migrations"] == [] and "is running" in json.dumps(repair["warnings"])
    finally:
        gate.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
        out, _ = run.communicate(timeout=60)
    assert as_json(subprocess.CompletedProcess([], 0, out, ""))["status"] == "applied"
    after = as_json(patcher("status", "--json", *base))
    assert states(after)[1] == (2, "applied", False) and after["current_version"] == 2


def test_repair_dry_run_shows_each_change_and_the_real_mode(
    mdir: MigrationDir, pg_dsn: str
) -> None:
    three(mdir, NO_TX_INVALID)
    query(
        pg_dsn, "CREATE TABLE votes (id int, post_id int); INSERT INTO votes VALUES (1, 7), (2, 7)"
    )
    mdir.write("1_create_votes.up.sql", "CREATE TABLE IF NOT EXISTS votes (id int, post_id int);")
    base = ("--source", str(mdir.path), "--database-url", pg_dsn)
    assert patcher("migrate", *base).returncode == 1
    assert query(pg_dsn, INVALID) == [("votes_one_per_post",)]
    mdir.write("1_create_votes.up.sql", "-- reviewed\nCREATE TABLE IF NOT EXISTS votes (id int);")

    planned = as_json(patcher("repair", "--dry-run", "--json", *base))
    cleared = (
        "drops INVALID index(es) public.votes_one_per_post, then removes the history row the "
        "unfinished up script left: the version is pending again"
    )
    assert [(m["version"], m["transactional"], m["change"]) for m in planned["migrations"]] == [
        (1, True, "records the changed file's new checksum"),
        (2, False, cleared),
    ]
    text = patcher("repair", "--dry-run", *base).stdout
    assert text.splitlines()[1].split()[-1] == "CHANGE"
    row = next(line for line in text.splitlines() if line.startswith("2 "))
    assert row.split()[3:5] == ["planned", "no"] and row.endswith(f"  {cleared}")
    markdown = patcher("repair", "--dry-run", "--format", "markdown", *base).stdout
    assert "| state | transactional | ms | change |" in markdown
    assert f"| 2 | index_votes | up | planned | no |  | {cleared} |" in markdown
    assert history(pg_dsn) == [(1, False), (2, True)]  # a dry run changes nothing

    repaired = as_json(patcher("repair", "--json", *base))
    assert states(repaired) == [(1, "applied", True), (2, "not_run", False)]
    assert [p["version"] for p in repaired["pending"]] == [2, 3]  # pending again, not applied
    assert repaired["current_version"] == 1 and history(pg_dsn) == [(1, False)]
    assert repaired["migrations"][1]["change"] == cleared and query(pg_dsn, INVALID) == []


def test_repair_of_a_dirty_down_says_the_version_is_applied_again(
    mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.pair("1", "ab", "CREATE TABLE a (id int);", "-- patcher:no-transaction\nDROP TABLE nope;")
    base = ("--source", str(mdir.path), "--database-url", pg_dsn)
    patcher("migrate", *base)
    assert patcher("rollback", *base).returncode == 1
    status = as_json(patcher("status", "--json", *base))
    assert [(m["direction"], m["state"], m["transactional"]) for m in status["migrations"]] == [
        ("down", "dirty", False)  # the down script's mode: the one that did not finish
    ]
    assert status["current_version"] is None
    repaired = as_json(patcher("repair", "--json", *base))
    assert states(repaired) == [(1, "applied", False)] and repaired["pending"] == []
    assert repaired["migrations"][0]["change"] == (
        "clears the dirty mark of the unfinished down script: the version is applied again"
    )
    assert repaired["current_version"] == 1


def unknown(done: subprocess.CompletedProcess[str], cause: str) -> None:
    result = as_json(done)
    assert result["current_version"] is None and "pending" not in result
    assert result["current_version_unknown_reason"] == (
        f"the run stopped before it read the history: {cause}"
    )
    assert result["error"]["type"] == cause


def test_a_run_that_never_read_the_history_says_the_version_is_unknown(
    mdir: MigrationDir, pg_dsn: str, tmp_path: Any
) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    closed = "postgresql://nobody@127.0.0.1:9/nowhere"
    base = ("--source", str(mdir.path))
    unknown(patcher("status", "--json", *base, "--database-url", closed), "DatabaseUnavailable")
    text = patcher("status", *base, "--database-url", closed).stdout
    assert text.splitlines()[0].startswith(
        "status: failed - current version unknown (the run stopped before it read the history: "
        "DatabaseUnavailable)"
    )
    assert "pending" not in text and "version none" not in text
    markdown = patcher("status", "--format", "markdown", *base, "--database-url", closed).stdout
    assert "current version unknown (the run stopped before it read the history" in markdown
    missing = ("--source", str(tmp_path / "nope"), "--database-url", pg_dsn)
    unknown(patcher("migrate", "--json", *missing), "SourceUnavailable")
    bad = {"PATCHER_LOCK_TIMEOUT": "soon"}
    unknown(patcher("migrate", "--json", *base, "--database-url", pg_dsn, env=bad), "ConfigError")
    with psycopg.connect(pg_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("public", "schema_migrations"),))
        wait = {"PATCHER_LOCK_WAIT_SECONDS": "0.3"}
        locked = patcher("migrate", "--json", *base, "--database-url", pg_dsn, env=wait)
    unknown(locked, "LockTimeout")
    assert as_json(locked)["status"] == "locked"
    # once the history is read, the version is known again: none applied, one pending
    known = as_json(patcher("status", "--json", *base, "--database-url", pg_dsn))
    assert known["current_version"] is None and known["pending"] == [
        {"version": 1, "description": "a"}
    ]
    assert "current_version_unknown_reason" not in known
