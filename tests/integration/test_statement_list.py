"""One statement list for every path, and what it refuses, on the real PostgreSQL (SPEC section 7
item 5; issue 26 items 2-5).

A script up to ``MAX_CHARS`` rides in a batch (the server splits the script text itself); a
bigger one runs alone in chunks of statements the runner splits (as lock_timeout retries do).
Both must run the same statements, and what the runner refuses is refused before anything runs.
"""

from __future__ import annotations

import pytest

from patcher.engine.batched_steps import MAX_CHARS
from tests.fixtures.engine import MigrationDir, Run, history, query, tables
from tests.fixtures.postgres import PgServer

PAD_ROW = "INSERT INTO pad VALUES ('" + "p" * 200 + "');\n"


def padded(sql: str, big: bool) -> str:
    """``sql``, then (big) enough INSERTs that the script runs on the chunked path."""
    pad = "CREATE TABLE pad (note text);\n"
    if big:
        pad += PAD_ROW * (MAX_CHARS // len(PAD_ROW) + 10)
        assert len(sql) + len(pad) > MAX_CHARS
    return sql + pad


PATHS = pytest.mark.parametrize("big", [False, True], ids=["batched", "chunked"])


@PATHS
def test_a_line_comment_before_the_semicolon_keeps_its_statement(
    run: Run, mdir: MigrationDir, pg_dsn: str, big: bool
) -> None:
    """The chunked path joined statements with ';\\n', which the trailing comment swallowed."""
    mdir.pair("1", "t", "CREATE TABLE t (id int);")
    sql = "ALTER TABLE t ADD COLUMN x int -- the new column\n;\nINSERT INTO t VALUES (1, 2);\n"
    mdir.write("2_x.up.sql", padded(sql, big))
    result = run("migrate")
    assert result["status"] == "applied", result.get("error")
    assert query(pg_dsn, "SELECT id, x FROM t") == [(1, 2)]


@PATHS
@pytest.mark.parametrize(
    "setting",
    [
        "SET standard_conforming_strings = off;",
        "SELECT set_config('standard_conforming_strings', 'off', false);",
    ],
)
def test_turning_standard_conforming_strings_off_is_refused_on_every_path(
    run: Run, mdir: MigrationDir, pg_dsn: str, big: bool, setting: str
) -> None:
    """psql and the chunked path read the later literal as 'a'';...', a batch as 'a\\'."""
    mdir.pair("1", "t", "CREATE TABLE t (note text);")
    sql = f"{setting}\nINSERT INTO t VALUES ('a\\');\nINSERT INTO t VALUES ('b');\n"
    mdir.write("2_x.up.sql", padded(sql, big))
    result = run("migrate")
    assert (result["status"], result["error"]["type"]) == ("invalid", "InvalidSource")
    assert result["error"]["message"].startswith(
        "2_x.up.sql line 1: a migration may not change standard_conforming_strings"
    )
    assert tables(pg_dsn) == set(), "nothing ran, not even version 1"


HIDDEN_COMMIT = (
    "CREATE FUNCTION next_of(begin int) RETURNS int LANGUAGE sql IMMUTABLE RETURN begin + 1;\n"
    "COMMIT;\n"
    "SELECT 1 / 0;\n"
)


@PATHS
def test_a_commit_after_a_parameter_named_begin_is_refused_before_anything_runs(
    run: Run, mdir: MigrationDir, pg_dsn: str, big: bool
) -> None:
    """Was: the COMMIT ran, next_of stayed committed, and the result said nothing remained."""
    mdir.pair("1", "t", "CREATE TABLE t (id int);")
    mdir.write("2_f.up.sql", padded(HIDDEN_COMMIT, big))
    for dry_run in (True, False):
        result = run("migrate", dry_run=dry_run)
        assert (result["status"], result["error"]["type"]) == ("invalid", "InvalidSource")
        assert result["error"]["message"].startswith(
            "2_f.up.sql line 2: COMMIT is transaction control"
        )
    assert tables(pg_dsn) == set()
    assert query(pg_dsn, "SELECT count(*) FROM pg_proc WHERE proname = 'next_of'") == [(0,)]


def test_a_function_with_a_begin_parameter_still_runs(
    run: Run, mdir: MigrationDir, pg_dsn: str, pg_server: PgServer
) -> None:
    # A SQL-standard body (RETURN ...) is PG 14+; before it, the same parameter in a quoted body
    # takes the splitter down the same path (its BEGIN tracking, then the parser's answer).
    standard = pg_server.server_version >= 140000
    body = "RETURN begin + 1" if standard else "AS $$ SELECT begin + 1 $$"
    mdir.write(
        "1_f.up.sql",
        f"CREATE FUNCTION next_of(begin int) RETURNS int LANGUAGE sql IMMUTABLE {body};\n"
        "CREATE TABLE t AS SELECT next_of(41) AS answer;\n",
    )
    result = run("migrate")
    assert result["status"] == "applied", result.get("error")
    assert query(pg_dsn, "SELECT answer FROM t") == [(42,)]


@pytest.mark.parametrize(
    "copy",
    ["COPY t TO STDOUT;", "copy (SELECT 1) to /* out */ stdout WITH (FORMAT csv);"],
)
@pytest.mark.parametrize("directive", [False, True], ids=["transactional", "no-transaction"])
def test_copy_to_the_client_is_refused_before_anything_runs(
    run: Run, mdir: MigrationDir, pg_dsn: str, copy: str, directive: bool
) -> None:
    """Was: the batch committed, then the copy broke the session: DatabaseUnavailable."""
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    head = "-- patcher:no-transaction\n" if directive else ""
    mdir.write("2_t.up.sql", f"{head}CREATE TABLE t (id int);\n{copy}\n")
    result = run("migrate")
    assert (result["status"], result["error"]["type"]) == ("invalid", "InvalidSource")
    line = 3 if directive else 2
    assert result["error"]["message"].startswith(f"2_t.up.sql line {line}: COPY ... TO STDOUT")
    assert tables(pg_dsn) == set()


def test_bare_cluster_is_refused_before_anything_runs(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    mdir.pair("1", "a", "CREATE TABLE a (id int);")
    mdir.write("2_c.up.sql", "CREATE TABLE c (id int);\nCLUSTER;\n")
    result = run("migrate")
    assert (result["status"], result["error"]["type"]) == ("invalid", "InvalidSource")
    assert result["error"]["message"].startswith(
        "2_c.up.sql line 2: CLUSTER cannot run inside a transaction block"
    )
    assert tables(pg_dsn) == set()
    mdir.write("2_c.up.sql", "-- patcher:no-transaction\nCREATE TABLE c (id int);\nCLUSTER;\n")
    result = run("migrate")
    assert result["status"] == "applied", result.get("error")
    assert history(pg_dsn) == [(1, False), (2, False)]


def test_a_database_whose_default_turns_standard_conforming_strings_off_reads_as_split(
    run: Run, mdir: MigrationDir, pg_dsn: str
) -> None:
    """The statement list is split with standard_conforming_strings on; a database (or role)
    default of off would make the server read 'a\\' as an unterminated string."""
    dbname = query(pg_dsn, "SELECT current_database()")[0][0]
    query(pg_dsn, f'ALTER DATABASE "{dbname}" SET standard_conforming_strings = off')
    mdir.pair("1", "t", "CREATE TABLE t (note text);\nINSERT INTO t VALUES ('a\\');\n")
    result = run("migrate")
    assert result["status"] == "applied", result.get("error")
    assert query(pg_dsn, "SELECT note FROM t") == [("a\\",)]
