"""Messages name what the reader can act on (issue 28 item 5), through the real ``patcher``
process: the CLI's flags (the Lambda's payload keys for the same refusal), connection hints
only for a connection error, one syntax error at one position in lint, verify and the run, and
verify saying ``failed`` for a script it ran and saw fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from patcher.app.commands import Invocation, migrate
from patcher.app.config import Config
from patcher.dev.localpg import free_port
from tests.fixtures.engine import MigrationDir


def patcher(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PATCHER_")}
    return subprocess.run(
        [sys.executable, "-m", "patcher.cli", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=120,
    )


def result_of(*args: str) -> dict[str, Any]:
    done = patcher(*args, "--json")
    assert "Traceback" not in done.stderr, done.stderr
    return dict(json.loads(done.stdout))


# -- the CLI names its flags; the Lambda its payload keys ---------------------------------------


def test_cli_refusals_name_its_flags(mdir: MigrationDir, pg_dsn: str) -> None:
    mdir.pair("1", "table", "CREATE TABLE t (id int);")
    verify = patcher("migrate", "--verify", "--source", str(mdir.path), "--database-url", pg_dsn)
    assert verify.returncode == 2
    assert (
        "error: InvalidRequest: --verify needs --dry-run and the command migrate or rollback"
        in verify.stdout
    )
    assert "dry_run" not in verify.stdout

    nowhere = patcher("status", "--source", str(mdir.path))
    assert "pass --database-url URL, or set exactly one of PATCHER_DATABASE_URL" in nowhere.stdout

    both = patcher(
        "rollback", "--steps", "1", "--target", "0", "--source", str(mdir.path),
        "--database-url", pg_dsn,
    )  # fmt: skip
    assert "give either --steps or --target, not both" in both.stdout


def test_the_dirty_refusal_names_the_repair_command_in_each_adapter(
    mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.pair("1", "table", "CREATE TABLE t (id int);")
    mdir.write("2_bad.up.sql", "-- patcher:no-transaction\nSELECT 1/0;\n")
    assert result_of("migrate", "--source", str(mdir.path), "--database-url", pg_dsn)["error"]
    cli = result_of("migrate", "--source", str(mdir.path), "--database-url", pg_dsn)
    assert cli["error"]["type"] == "DirtyDatabase"
    assert cli["error"]["message"].endswith(
        "then run repair: `patcher repair --dry-run` to see what it will do, then `patcher repair`"
    )
    config = Config(source=str(mdir.path), database_url=pg_dsn)
    lam = migrate(config, invocation=Invocation(conninfo=lambda: pg_dsn)).to_dict()
    assert lam["error"]["message"].endswith(
        'then run repair: {"action": "repair", "dry_run": true} to see what it will do, then '
        '{"action": "repair"}'
    )
    assert "--dry-run" not in lam["error"]["message"]


def test_the_lambda_keeps_its_payload_words(mdir: MigrationDir, pg_dsn: str) -> None:
    config = Config(source=str(mdir.path), database_url=pg_dsn)
    refused = migrate(config, verify=True).to_dict()
    message = refused["error"]["message"]
    assert message == "verify needs dry_run: true and the action migrate or rollback"


# -- a connection error gives connection hints only ------------------------------------------

_NOT_CONNECTION = re.compile(r"lock|LOCK_TIMEOUT|STATEMENT_TIMEOUT|migration|repair|dirty", re.I)


@pytest.mark.parametrize("kind", ["no server", "bad login"])
def test_a_connection_error_gives_connection_hints_only(
    mdir: MigrationDir, pg_dsn: str, kind: str
) -> None:
    mdir.pair("1", "table", "CREATE TABLE t (id int);")
    if kind == "no server":
        url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
        hint = "no server answered: check the host and port in the URL given (--database-url"
    else:
        url = re.sub(r"//[^@/]*@", "//nobody_here@", pg_dsn)
        hint = "refused the login: check the user, password and database name in the URL given"
    done = patcher("migrate", "--source", str(mdir.path), "--database-url", url)
    assert done.returncode == 1
    error = next(line for line in done.stdout.splitlines() if line.startswith("error: "))
    assert error.startswith("error: DatabaseUnavailable: cannot connect to PostgreSQL: ")
    assert hint in error
    assert not _NOT_CONNECTION.search(error), error
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning")]
    assert warnings == []


# -- one syntax error, one position: lint, verify and the run -----------------------------------

BROKEN = {
    # a token PostgreSQL stops at, after a multi-byte character and a comment
    "token": (
        "-- ünïcødé first\nCREATE TABLE a (id int);\n\nCREATE TABLE b (\n    id int,\n"
        "    name tex t\n);\n",
        (6, 14),
    ),
    # the statement ends too early: the position is just past its last character
    "end of input": ("CREATE TABLE a (id int);\nCREATE TABLE b (\n    id int\n", (3, 11)),
}


@pytest.mark.parametrize("case", BROKEN)
def test_one_syntax_error_is_at_one_position_everywhere(
    mdir: MigrationDir, pg_dsn: str, case: str
) -> None:
    text, (line, column) = BROKEN[case]
    mdir.write("1_broken.up.sql", text)
    source = ["--source", str(mdir.path), "--database-url", pg_dsn]

    lint = json.loads(patcher("lint", str(mdir.path), "--format", "json").stdout)
    [parse] = [f for f in lint["findings"] if f["code"] == "PARSE_UNSUPPORTED"]
    assert (parse["line"], parse["column"]) == (line, column)
    assert f"at line {line}, column {column}" in parse["message"]

    preview = result_of("migrate", "--dry-run", *source)
    [risk] = [r for r in preview["migrations"][0]["risks"] if r["code"] == "PARSE_UNSUPPORTED"]
    assert f"at line {line}, column {column}" in risk["explanation"]

    verified = result_of("migrate", "--dry-run", "--verify", *source)
    ran = result_of("migrate", *source)
    for result in (verified, ran):
        error = result["error"]
        assert (error["type"], error["line"], error["column"]) == (
            "MigrationFailed", line, column,
        )  # fmt: skip
        assert f"1_broken.up.sql line {line}, column {column} (statement 2)" in error["message"]


# -- verify says failed for a script it ran and saw fail ----------------------------------------


def test_verify_says_failed_for_a_script_it_ran(mdir: MigrationDir, pg_dsn: str) -> None:
    mdir.pair("1", "table", "CREATE TABLE t (id int);")
    mdir.pair("2", "bad", "INSERT INTO t VALUES (1);\nSELECT 1/0;\n")
    mdir.pair("3", "after", "CREATE TABLE u (id int);")
    source = ["--source", str(mdir.path), "--database-url", pg_dsn]
    text = patcher("migrate", "--dry-run", "--verify", *source).stdout
    verdicts = [line for line in text.splitlines() if line.startswith("verify:")]
    assert verdicts[0].startswith("verify: ran in ")
    assert verdicts[1] == (
        "verify: failed at line 2, column 1: division by zero (rolled back, nothing changed)"
    )
    assert verdicts[2] == (
        "verify: not run - not verified: an earlier script stopped the verification"
    )
    markdown = patcher("migrate", "--dry-run", "--verify", "--format", "markdown", *source).stdout
    assert "Verify: **failed** at line 2, column 1: division by zero" in markdown
    assert markdown.count("**not run**") == 1  # version 3 only
