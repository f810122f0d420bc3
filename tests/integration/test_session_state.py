"""SPEC 7 item 2 on a real PostgreSQL: what a migration leaves in the session (temporary tables,
prepared statements, cursors, LISTENs, client_encoding) ends with it, and the user's libpq
``options`` (URL or ``PGOPTIONS``) hold for every migration beside the runner's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from patcher.cli.main import main
from tests.fixtures.engine import MigrationDir, history, query

NO_TX = "-- patcher:no-transaction\n"
# The three paths a migration can take: batched; alone (a script past the batch's 1 MB goes in
# its own messages, COMMIT with the bookkeeping); no-transaction.
PATHS = pytest.mark.parametrize(
    ("head", "tail"),
    [("", ""), ("", f"\n/* {'x' * 1_000_000} */"), (NO_TX, "")],
    ids=["batched", "alone", "no_transaction"],
)
# What a migration sees of the session the ones before it left.
SEEN = (
    "CREATE TABLE public.seen AS SELECT "
    "(SELECT count(*) FROM pg_prepared_statements)::int AS prepared, "
    "(SELECT count(*) FROM pg_cursors)::int AS cursors, "
    "(SELECT count(*) FROM pg_listening_channels())::int AS listens, "
    "(SELECT count(*) FROM pg_class WHERE relpersistence = 't')::int AS temps, "
    "current_setting('client_encoding') AS encoding;"
)


def cli(mdir: MigrationDir, dsn: str, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    """``patcher <args> --json`` in-process; the parsed result."""
    capsys.readouterr()
    main([*args, "--json", "--source", str(mdir.path), "--database-url", dsn])
    return json.loads(capsys.readouterr().out)


def patcher_process(mdir: MigrationDir, dsn: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``patcher migrate --json`` as its own process: the console script the package installs."""
    script = Path(sys.executable).with_name("patcher")
    return subprocess.run(
        [str(script), "migrate", "--json", "--source", str(mdir.path), "--database-url", dsn],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


@pytest.mark.parametrize("no_tx", ["", NO_TX], ids=["transactional", "no_transaction"])
def test_a_temp_table_does_not_swallow_the_next_migrations_writes(
    mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str], no_tx: str
) -> None:
    """v2's ``CREATE TEMP TABLE items`` would shadow ``public.items`` for v3's unqualified
    INSERT (pg_temp comes first in the search path): its rows must land in the real table."""
    mdir.pair("1", "items", "CREATE TABLE items (id int);")
    scratch = f"{no_tx}CREATE TEMP TABLE items (id int);\nINSERT INTO items VALUES (0);"
    mdir.pair("2", "scratch", scratch)
    mdir.pair("3", "fill", "INSERT INTO items VALUES (1), (2), (3);")
    result = cli(mdir, pg_dsn, capsys, "migrate")
    assert result["status"] == "applied", result["error"]
    assert query(pg_dsn, "SELECT id FROM public.items ORDER BY id") == [(1,), (2,), (3,)]


@PATHS
def test_prepared_statements_cursors_listens_and_temp_tables_end_with_their_migration(
    mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str], head: str, tail: str
) -> None:
    mdir.pair(
        "1",
        "leaves",
        f"{head}PREPARE leftover AS SELECT 1;\n"
        "DECLARE held CURSOR WITH HOLD FOR SELECT 1;\n"
        "LISTEN leftover_channel;\n"
        f"CREATE TEMP TABLE scratch (id int);{tail}",
    )
    mdir.pair("2", "seen", SEEN)
    result = cli(mdir, pg_dsn, capsys, "migrate")
    assert result["status"] == "applied", result["error"]
    assert query(pg_dsn, "SELECT * FROM public.seen") == [(0, 0, 0, 0, "UTF8")]


@PATHS
def test_client_encoding_set_by_a_migration_ends_with_it(
    mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str], head: str, tail: str
) -> None:
    """A non-ASCII file name (its description goes into the history) after a migration that
    switched the session to LATIN1: a clean result, and the next migration sees UTF8."""
    script = f"{head}SET client_encoding = 'LATIN1';\nSELECT 'é';{tail}"
    mdir.pair("1", "données_日本", script)
    mdir.pair("2", "seen", SEEN)
    result = cli(mdir, pg_dsn, capsys, "migrate")
    assert result["status"] == "applied", result["error"]
    assert history(pg_dsn) == [(1, False), (2, False)]
    rows = query(pg_dsn, "SELECT description FROM schema_migrations ORDER BY version")
    assert rows[0][0] == "données_日本"
    assert query(pg_dsn, "SELECT encoding FROM public.seen") == [("UTF8",)]


def test_client_encoding_failure_through_the_cli_process_is_a_json_result(
    mdir: MigrationDir, pg_dsn: str
) -> None:
    """The console script: LATIN1 set, then a failure in the same migration: the result is
    JSON naming the failure, the audit row is written, nothing is left dirty."""
    mdir.pair("1", "ok_日本", f"{NO_TX}SET client_encoding = 'LATIN1';\nSELECT 1;")
    mdir.pair("2", "bad_日本", f"{NO_TX}SET client_encoding = 'LATIN1';\nSELECT 1/0;")
    done = patcher_process(mdir, pg_dsn)
    assert "Traceback" not in done.stderr, done.stderr
    result = json.loads(done.stdout)
    assert done.returncode == 1 and result["status"] == "failed", result
    assert "division by zero" in result["error"]["message"]
    assert history(pg_dsn) == [(1, False), (2, True)]  # the failed no-transaction one: dirty
    log = query(pg_dsn, "SELECT version, outcome FROM schema_migrations_log ORDER BY id")
    assert log == [(1, "started"), (1, "applied"), (2, "started"), (2, "failed")]


def test_client_encoding_through_the_cli_process_applies(mdir: MigrationDir, pg_dsn: str) -> None:
    mdir.pair("1", "über_日本", f"{NO_TX}SET client_encoding = 'LATIN1';\nSELECT 1;")
    mdir.pair("2", "straße", "SET client_encoding = 'LATIN1';\nSELECT 'é';")
    mdir.pair("3", "seen", SEEN)
    done = patcher_process(mdir, pg_dsn)
    assert "Traceback" not in done.stderr, done.stderr
    result = json.loads(done.stdout)
    assert done.returncode == 0 and result["status"] == "applied", result
    assert history(pg_dsn) == [(1, False), (2, False), (3, False)]


# -- the user's libpq options -------------------------------------------------------------------

WHERE = (
    "CREATE TABLE placed AS SELECT current_setting('search_path') AS search_path, "
    "current_setting('lock_timeout') AS lock_timeout, "
    "current_setting('work_mem') AS work_mem;"
)


@pytest.fixture
def app_schema(pg_dsn: str) -> str:
    query(pg_dsn, "CREATE SCHEMA app")
    return "app"


def _migrations_in_app(mdir: MigrationDir) -> None:
    mdir.pair("1", "resets", "CREATE SCHEMA elsewhere;\nSET search_path = elsewhere;")
    mdir.pair("2", "placed", WHERE)


def _check_options_held(pg_dsn: str) -> None:
    rows = query(pg_dsn, "SELECT * FROM app.placed")
    # the user's search_path and work_mem hold for every migration; lock_timeout is the run's
    assert rows == [("app", "10s", "7MB")]
    assert query(pg_dsn, "SELECT count(*) FROM public.schema_migrations") == [(2,)]


def test_url_options_are_kept_and_merged(
    mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str], app_schema: str
) -> None:
    _migrations_in_app(mdir)
    options = quote("-c search_path=app -c work_mem=7MB -c lock_timeout=1h", safe="")
    sep = "&" if "?" in pg_dsn else "?"
    result = cli(mdir, pg_dsn + f"{sep}options={options}", capsys, "migrate")
    assert result["status"] == "applied", result["error"]
    _check_options_held(pg_dsn)


def test_pgoptions_are_kept_and_merged(mdir: MigrationDir, pg_dsn: str, app_schema: str) -> None:
    _migrations_in_app(mdir)
    done = patcher_process(
        mdir, pg_dsn, PGOPTIONS="-c search_path=app -c work_mem=7MB -c lock_timeout=1h"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    _check_options_held(pg_dsn)


def test_text_the_scripts_own_encoding_cannot_carry_fails_cleanly(
    mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A no-transaction script that switched to LATIN1 and then sends text LATIN1 cannot
    carry: that statement fails with a message naming the encoding, as a result."""
    mdir.pair("1", "日本", f"{NO_TX}SET client_encoding = 'LATIN1';\nSELECT '日本';")
    result = cli(mdir, pg_dsn, capsys, "migrate")
    assert result["status"] == "failed"
    error = result["error"]
    assert (error["type"], error["sqlstate"], error["statement"]) == ("MigrationFailed", "22P05", 2)
    assert "client_encoding LATIN1, which the script set, cannot carry" in error["message"]
    assert history(pg_dsn) == [(1, True)]
    log = query(pg_dsn, "SELECT outcome, description FROM schema_migrations_log ORDER BY id")
    assert log == [("started", "日本"), ("failed", "日本")]


def test_the_verified_dry_run_starts_each_script_from_the_runs_session(
    mdir: MigrationDir, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The preview runs every script in one rolled-back transaction: each one after the first
    starts from the restored session too (a PREPARE survives ROLLBACK), as in the run."""
    leaves = "PREPARE leftover AS SELECT 1;\nSET search_path = nowhere;\n"
    mdir.pair("1", "leaves", leaves)
    mdir.pair("2", "again", leaves)  # the same PREPARE name again
    mdir.pair("3", "lands", "CREATE TABLE u (id int);")  # no schema to create in, if leaked
    result = cli(mdir, pg_dsn, capsys, "migrate", "--dry-run", "--verify")
    assert result["status"] == "planned", result["error"]
    assert [m["verified"] for m in result["migrations"]] == [True, True, True], result
    assert query(pg_dsn, "SELECT count(*) FROM pg_tables WHERE tablename = 'u'") == [(0,)]
    result = cli(mdir, pg_dsn, capsys, "migrate")
    assert result["status"] == "applied", result["error"]
