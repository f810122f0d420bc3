"""One statement list, as PostgreSQL splits it (SPEC section 7 item 5; issue 26 items 2-5).

The splitter is checked against PostgreSQL's own parser (pglast, libpg_query) on the
repository's corpora and on generated scripts made of what splits differently in hand lexers:
dollar quotes, ``BEGIN ATOMIC`` bodies with CASE, nested comments, ``E''`` strings, identifiers
named like keywords (``begin``, ``"end"``), line comments before the ``;``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patcher.core.errors import InvalidSource
from patcher.core.models import SourceObject
from patcher.sql.classify import client_copy, non_transactional
from patcher.sql.lexer import Statement, split_statements
from patcher.sql.scripts import load_script, transaction_control

ROOT = Path(__file__).resolve().parents[2]


def server_split(sql: str) -> list[tuple[int, str]]:
    """(start, text) of each statement as PostgreSQL's parser splits the script."""
    from pglast.parser import parse_sql

    out = []
    for raw in parse_sql(sql):
        at = raw.stmt_location or 0
        end = at + raw.stmt_len if raw.stmt_len else len(sql)
        out.append((at, sql[at:end].rstrip()))
    return out


def ours(sql: str) -> list[tuple[int, str]]:
    return [(s.start, s.text) for s in split_statements(sql)]


def stmt(text: str) -> Statement:
    return Statement(text, 0, 1, 1)


def load(sql: str, name: str = "1_a.up.sql") -> object:
    return load_script(SourceObject(name, name), sql.encode())


# --- equal to PostgreSQL's parser on the corpora ------------------------------------------


def _corpus_files() -> list[Path]:
    files = sorted((ROOT / "tests" / "data").rglob("*.sql"))
    return files + sorted((ROOT / "migrations").glob("*.sql"))


def test_the_repository_corpora_split_as_postgresql_splits_them() -> None:
    from pglast.parser import ParseError

    checked = 0
    for path in _corpus_files():
        sql = path.read_text()
        try:
            expected = server_split(sql)
        except ParseError:  # a deliberately broken file: the server refuses it whole
            continue
        assert ours(sql) == expected, path
        checked += 1
    assert checked > 100


def test_the_bench_corpus_splits_as_postgresql_splits_it() -> None:
    from bench.corpus import corpus

    for name, sql in corpus(300).items():
        assert ours(sql) == server_split(sql), name


# --- equal to PostgreSQL's parser on generated scripts --------------------------------------

_IDENT = st.sampled_from(
    ["a", "begin", "atomic", '"end"', '"begin"', '"a;b"', '"COMMIT"', "x$y", "é", "case_", "end_"]
)
_LITERAL = st.sampled_from(
    [
        "'a;b'",
        "'it''s; --'",
        "'/* ;'",
        "E'a\\';b'",
        "e'x\\\\'",
        "E'\\\\'",
        "$$a;b$$",
        "$q$ $$ ; ' $q$",
        "$_$;$_$",
        "B'101'",
        "X'1F'",
        "U&'d\\0061t;'",
        "42",
        "$1",
    ]
)
_COMMENT = st.sampled_from(["", " /* a /* b; */ c */ ", " -- x; 'y\n", "/**/"])
_EXPR = st.one_of(_IDENT, _LITERAL, _LITERAL.map(lambda x: f"({x})"))


def _select(exprs: list[str], comment: str, table: str) -> str:
    return f"SELECT {', '.join(exprs)}{comment} FROM {table}"


_SELECT = st.builds(_select, st.lists(_EXPR, min_size=1, max_size=4), _COMMENT, _IDENT)
_BODY_STMT = st.one_of(_SELECT, st.just("SELECT CASE WHEN true THEN 1 ELSE 2 END"))
_ATOMIC = st.builds(
    lambda kind, body: (
        f"CREATE {kind} f() RETURNS int LANGUAGE sql BEGIN ATOMIC "
        + "".join(f"{s}; " for s in body)
        + "END"
    ),
    st.sampled_from(["FUNCTION", "OR REPLACE FUNCTION", "function"]),
    st.lists(_BODY_STMT, min_size=1, max_size=3),
)
_FIXED = st.sampled_from(
    [
        "CREATE FUNCTION next_of(begin int) RETURNS int LANGUAGE sql IMMUTABLE RETURN begin + 1",
        "CREATE PROCEDURE p(begin int) LANGUAGE sql BEGIN ATOMIC SELECT begin; END",
        "CREATE FUNCTION g() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$",
        "DO $d$ BEGIN PERFORM 1; END $d$",
        "CREATE TABLE begin (end_ int, atomic text DEFAULT 'x;')",
        "INSERT INTO t VALUES (E'\\'', $$;$$, '\\')",
        "COMMIT",
        "BEGIN",
        "END",
        "ALTER TABLE t ADD COLUMN x int -- c\n",
    ]
)
_STATEMENT = st.one_of(_SELECT, _ATOMIC, _FIXED)
_GAP = st.sampled_from(["\n", " ", "\r\n", "\n-- c; 'x\n", "/* c; /* n */ $$ */", ";", ""])


@settings(deadline=None, max_examples=400)
@given(statements=st.lists(_STATEMENT, min_size=1, max_size=7), gaps=st.lists(_GAP, min_size=8))
def test_generated_scripts_split_as_postgresql_splits_them(
    statements: list[str], gaps: list[str]
) -> None:
    script = "".join(f"{text};{gap}" for text, gap in zip(statements, gaps, strict=False))
    assert ours(script) == server_split(script)


# --- transaction control cannot hide (item 3) -----------------------------------------------

HIDDEN_COMMIT = (
    "CREATE TABLE t (id int);\n"
    "CREATE FUNCTION next_of(begin int) RETURNS int LANGUAGE sql IMMUTABLE RETURN begin + 1;\n"
    "COMMIT;\n"
    "INSERT INTO t VALUES (1);\n"
)


def test_a_parameter_named_begin_does_not_merge_what_follows() -> None:
    assert [s.text for s in split_statements(HIDDEN_COMMIT)][1:] == [
        "CREATE FUNCTION next_of(begin int) RETURNS int LANGUAGE sql IMMUTABLE RETURN begin + 1",
        "COMMIT",
        "INSERT INTO t VALUES (1)",
    ]
    listed = split_statements(HIDDEN_COMMIT)
    assert [(s.line, s.column) for s in listed] == [(1, 1), (2, 1), (3, 1), (4, 1)]


def test_a_long_merge_is_cut_by_parsing_only_the_routine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past PARSE_LIMIT the parser is asked about growing prefixes of the routine, never about
    the whole merged rest of a big script (its parse tree would take a few times the text)."""
    from pglast import parser

    import patcher.sql.lexer as lexer

    asked: list[int] = []
    real = parser.split

    def counting(text: str, **kwargs: bool) -> object:
        asked.append(len(text))
        return real(text, **kwargs)

    monkeypatch.setattr(lexer, "PARSE_LIMIT", 200)
    monkeypatch.setattr(parser, "split", counting)
    sql = HIDDEN_COMMIT + "INSERT INTO t VALUES (2);\n" * 50
    listed = [s.text for s in split_statements(sql)]
    assert listed[2:4] == ["COMMIT", "INSERT INTO t VALUES (1)"] and len(listed) == 54
    assert asked and max(asked) <= 200


def test_a_commit_after_a_begin_parameter_is_refused_naming_its_line() -> None:
    with pytest.raises(InvalidSource) as refused:
        load(HIDDEN_COMMIT)
    assert str(refused.value).startswith("1_a.up.sql line 3: COMMIT is transaction control")


def test_a_column_labelled_end_in_an_atomic_body_errs_on_the_refusing_side() -> None:
    """psql's heuristic (followed) ends the body at ``AS end``: psql then sends a statement the
    server refuses; here the ``END`` left over is refused as transaction control, unsent."""
    sql = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS end; END;"
    assert transaction_control(split_statements(sql)[-1]) == "COMMIT"


@pytest.mark.parametrize(
    "text",
    ["COMMIT", "commit /* c */", "End", "ROLLBACK -- r\n", "begin", "Start  Transaction"],
)
def test_transaction_control_however_written(text: str) -> None:
    assert transaction_control(split_statements(f"SELECT 1;\n{text};")[-1]) is not None


# --- COPY to or from the client (item 4) -----------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("COPY t TO STDOUT", "COPY ... TO STDOUT"),
        ("copy (SELECT 1) to stdout with (format csv)", "COPY ... TO STDOUT"),
        ("COPY t TO /* where */ Stdout", "COPY ... TO STDOUT"),
        ("COPY t FROM STDIN", "COPY ... FROM STDIN"),
        ("COPY t FROM STDOUT", "COPY ... FROM STDOUT"),
        ("COPY t TO STDIN", "COPY ... TO STDIN"),
        ("COPY BINARY t TO STDOUT", "COPY ... TO STDOUT"),
    ],
)
def test_copy_to_or_from_the_client(sql: str, name: str) -> None:
    assert client_copy(stmt(sql)) == name


def test_copy_to_stdout_is_refused_before_anything_runs() -> None:
    with pytest.raises(InvalidSource) as refused:
        load("CREATE TABLE t (id int);\nCOPY t TO STDOUT;\n")
    message = str(refused.value)
    assert message.startswith("1_a.up.sql line 2: COPY ... TO STDOUT copies to or from the client")


# --- commands that cannot run in a transaction block (item 5) --------------------------------


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("CLUSTER", "CLUSTER"),
        ("cluster verbose", "CLUSTER"),
        ("CLUSTER (VERBOSE)", "CLUSTER"),
        ("CREATE SUBSCRIPTION s CONNECTION 'c' PUBLICATION p", "CREATE SUBSCRIPTION"),
        ("ALTER SUBSCRIPTION s REFRESH PUBLICATION", "ALTER SUBSCRIPTION REFRESH PUBLICATION"),
        ("ALTER SUBSCRIPTION s SET PUBLICATION p", "ALTER SUBSCRIPTION SET PUBLICATION"),
        ("ALTER SUBSCRIPTION s ADD PUBLICATION p", "ALTER SUBSCRIPTION ADD PUBLICATION"),
    ],
)
def test_more_commands_that_cannot_run_in_a_transaction(sql: str, name: str) -> None:
    assert non_transactional(stmt(sql)) == name


@pytest.mark.parametrize(
    "sql",
    [
        "CLUSTER t",
        "CLUSTER VERBOSE t USING i",
        "CLUSTER (VERBOSE) t",
        "CREATE SUBSCRIPTION s CONNECTION 'c' PUBLICATION p WITH (connect = false)",
        "CREATE SUBSCRIPTION s CONNECTION 'c' PUBLICATION p WITH (create_slot = 'false')",
        "ALTER SUBSCRIPTION s SET PUBLICATION p WITH (refresh = false)",
        "ALTER SUBSCRIPTION s DISABLE",
        "DROP SUBSCRIPTION s",
    ],
)
def test_commands_that_can_run_in_a_transaction(sql: str) -> None:
    assert non_transactional(stmt(sql)) is None


def test_bare_cluster_is_refused_without_the_directive() -> None:
    with pytest.raises(InvalidSource) as refused:
        load("SELECT 1;\n/* all */ CLUSTER;\n")
    assert str(refused.value).startswith(
        "1_a.up.sql line 2: CLUSTER cannot run inside a transaction block"
    )
    load("-- patcher:no-transaction\nCLUSTER;\n")


# --- standard_conforming_strings (item 2) ----------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "SET standard_conforming_strings = off",
        "set session Standard_Conforming_Strings to 'off'",
        "SET LOCAL standard_conforming_strings = false",
        "SELECT set_config('standard_conforming_strings', 'off', false)",
        "ALTER DATABASE app SET standard_conforming_strings = off",
        "DO $$ BEGIN EXECUTE 'SET standard_conforming_strings = off'; END $$",
    ],
)
def test_turning_standard_conforming_strings_off_is_refused(text: str) -> None:
    with pytest.raises(InvalidSource) as refused:
        load(f"SELECT 1;\n{text};\nSELECT 'a\\';\n")
    assert "line 2: a migration may not change standard_conforming_strings" in str(refused.value)


@pytest.mark.parametrize(
    "text",
    [
        "SET standard_conforming_strings = on",
        "SET standard_conforming_strings TO DEFAULT",
        "RESET standard_conforming_strings",
        "SHOW standard_conforming_strings",
        "SELECT current_setting('standard_conforming_strings')",
    ],
)
def test_reading_or_keeping_standard_conforming_strings_is_fine(text: str) -> None:
    load(f"SELECT 1;\n{text};\n")
