"""patcher.sql.lexer: decoding, splitting like psql, the directive, statement classification."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patcher.core.errors import InvalidSource
from patcher.sql.classify import (
    NO_TRANSACTION_DIRECTIVE,
    TRANSACTION_CONTROL,
    client_copy,
    decode_script,
    has_no_transaction_directive,
    non_transactional,
)
from patcher.sql.lexer import Statement, line_col, split_statements


def texts(sql: str) -> list[str]:
    return [stmt.text for stmt in split_statements(sql)]


def stmt(text: str) -> Statement:
    return Statement(text, 0, 1, 1)


# --- splitting -----------------------------------------------------------------------------


def test_splits_on_semicolons_and_keeps_a_final_statement_without_one() -> None:
    assert texts("SELECT 1;\nSELECT 2 ;  SELECT 3") == ["SELECT 1", "SELECT 2", "SELECT 3"]


def test_drops_empty_and_comment_only_statements() -> None:
    sql = ";;\n  ;\n-- only a comment\n;/* block */;SELECT 1;;\n-- trailing\n/* end */\n"
    assert texts(sql) == ["SELECT 1"]


def test_empty_and_blank_scripts_have_no_statements() -> None:
    assert split_statements("") == []
    assert split_statements(" \n\t-- nothing\n/* here */ ") == []


def test_text_drops_leading_comments_but_keeps_inner_ones() -> None:
    sql = "-- lead\n/* lead */  SELECT 1 /* inner; */ + 2 -- tail;\n;"
    assert texts(sql) == ["SELECT 1 /* inner; */ + 2 -- tail;"]


def test_single_quoted_strings_with_doubled_quotes() -> None:
    assert texts("SELECT 'a;b', 'it''s; fine';SELECT ''';'") == [
        "SELECT 'a;b', 'it''s; fine'",
        "SELECT ''';'",
    ]


def test_plain_strings_have_no_backslash_escapes() -> None:
    # standard_conforming_strings: 'a\' is a whole string, so the ';' after it splits.
    assert texts("SELECT 'a\\';SELECT 2") == ["SELECT 'a\\'", "SELECT 2"]


def test_e_strings_have_backslash_escapes() -> None:
    sql = "SELECT E'it\\'s;', e'\\\\';SELECT E'a''b;'; SELECT 3"
    assert texts(sql) == ["SELECT E'it\\'s;', e'\\\\'", "SELECT E'a''b;'", "SELECT 3"]


def test_e_glued_to_an_identifier_is_not_an_e_string() -> None:
    # "some_e'\'" is the identifier some_e followed by the plain string '\'.
    assert texts("SELECT some_e'\\';SELECT 2") == ["SELECT some_e'\\'", "SELECT 2"]


def test_other_string_prefixes_are_plain_strings() -> None:
    sql = "SELECT U&'d\\0061t;', B'1;', X'1;', N'x\\';SELECT 2"
    assert texts(sql) == ["SELECT U&'d\\0061t;', B'1;', X'1;', N'x\\'", "SELECT 2"]


def test_double_quoted_identifiers() -> None:
    assert texts('SELECT "a;b", "x"";y" FROM "t;";SELECT 2') == [
        'SELECT "a;b", "x"";y" FROM "t;"',
        "SELECT 2",
    ]


def test_dollar_quotes_anonymous_and_tagged() -> None:
    sql = "SELECT $$a;b$$; SELECT $fn$ 'x; -- $$ ; $fn$; DO $_$ BEGIN; END $_$"
    assert texts(sql) == [
        "SELECT $$a;b$$",
        "SELECT $fn$ 'x; -- $$ ; $fn$",
        "DO $_$ BEGIN; END $_$",
    ]


def test_nested_dollar_tags() -> None:
    sql = "SELECT $a$ outer $b$;$b$ still; $a$; SELECT 2"
    assert texts(sql) == ["SELECT $a$ outer $b$;$b$ still; $a$", "SELECT 2"]


def test_dollar_tag_must_match_exactly() -> None:
    assert texts("SELECT $x$ $X$; $xy$; $x$;SELECT 2") == [
        "SELECT $x$ $X$; $xy$; $x$",
        "SELECT 2",
    ]


def test_parameters_and_identifiers_with_dollars_are_not_quotes() -> None:
    sql = "PREPARE p AS SELECT $1;SELECT a$b$ FROM t;SELECT x$$;SELECT 4"
    assert texts(sql) == ["PREPARE p AS SELECT $1", "SELECT a$b$ FROM t", "SELECT x$$", "SELECT 4"]


def test_unicode_dollar_tags_and_identifiers() -> None:
    assert texts("SELECT $é$ ; $é$, été$$ ;SELECT 2") == [
        "SELECT $é$ ; $é$, été$$",
        "SELECT 2",
    ]


def test_line_comments_hide_semicolons_and_quotes() -> None:
    sql = "SELECT 1 -- it's; not $$ a /* quote\n;SELECT 2 --x\r;\rSELECT 3"
    assert texts(sql) == ["SELECT 1 -- it's; not $$ a /* quote", "SELECT 2 --x", "SELECT 3"]


def test_nested_block_comments() -> None:
    sql = "SELECT 1 /* a; /* b; */ still; 'x */ + 1; SELECT 2"
    assert texts(sql) == ["SELECT 1 /* a; /* b; */ still; 'x */ + 1", "SELECT 2"]


def test_leading_nested_block_comment_is_skipped() -> None:
    assert texts("/* a /* b */ c; */ SELECT 1") == ["SELECT 1"]


def test_comment_markers_inside_strings_are_text() -> None:
    assert texts("SELECT '--', '/*';SELECT \"/*\";SELECT 3") == [
        "SELECT '--', '/*'",
        'SELECT "/*"',
        "SELECT 3",
    ]


def test_semicolons_inside_parentheses_do_not_split() -> None:
    sql = "CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b); SELECT (1)"
    assert texts(sql) == [
        "CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b)",
        "SELECT (1)",
    ]


def test_stray_closing_parenthesis_does_not_hide_later_semicolons() -> None:
    assert texts("SELECT 1);SELECT 2") == ["SELECT 1)", "SELECT 2"]


def test_begin_atomic_function_body_with_case() -> None:
    body = (
        "CREATE OR REPLACE FUNCTION f(a int) RETURNS int LANGUAGE sql\n"
        "BEGIN ATOMIC\n"
        "  SELECT CASE WHEN a > 0 THEN 1 ELSE CASE WHEN a < 0 THEN -1 END END;\n"
        "  SELECT a;\n"
        "END"
    )
    assert texts(body + ";\nSELECT f(1);") == [body, "SELECT f(1)"]


def test_begin_atomic_procedure_lowercase_and_with_comments() -> None:
    body = "create /* x */ procedure p()\nbegin atomic\n  insert into t values (1);\nend"
    assert texts(body + "; select 2") == [body, "select 2"]


def test_plpgsql_body_in_dollar_quotes() -> None:
    body = (
        "CREATE FUNCTION g() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n  IF true THEN RETURN NEW; END IF;\nEND;\n$$"
    )
    assert texts(body + ";\nCREATE TRIGGER t BEFORE INSERT ON x EXECUTE FUNCTION g();") == [
        body,
        "CREATE TRIGGER t BEFORE INSERT ON x EXECUTE FUNCTION g()",
    ]


def test_begin_end_outside_routines_are_plain_words() -> None:
    sql = "BEGIN;\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\nCOMMIT;\nEND;"
    assert texts(sql) == [
        "BEGIN",
        "CREATE TABLE t (id int)",
        "INSERT INTO t VALUES (1)",
        "COMMIT",
        "END",
    ]


def test_create_statements_that_are_not_routines_split_normally() -> None:
    sql = 'CREATE TABLE begin_log ("begin" int, case_no int);CREATE VIEW v AS SELECT 1;SELECT 2'
    assert texts(sql) == [
        'CREATE TABLE begin_log ("begin" int, case_no int)',
        "CREATE VIEW v AS SELECT 1",
        "SELECT 2",
    ]


def test_unterminated_string_runs_to_the_end() -> None:
    assert texts("SELECT 1; SELECT 'oops; SELECT 2;\n") == ["SELECT 1", "SELECT 'oops; SELECT 2;"]


@pytest.mark.parametrize(
    "tail",
    ['SELECT "oops; SELECT 2;', "SELECT $x$ oops; SELECT 2;", "SELECT E'oops\\'; SELECT 2;"],
)
def test_unterminated_quotes_run_to_the_end(tail: str) -> None:
    assert texts("SELECT 1;\n" + tail) == ["SELECT 1", tail]


def test_unterminated_block_comment_is_kept_for_the_server_to_report() -> None:
    assert texts("SELECT 1;\n/* forgot to close; SELECT 2;") == [
        "SELECT 1",
        "/* forgot to close; SELECT 2;",
    ]
    assert texts("SELECT 1 /* open; SELECT 2;") == ["SELECT 1 /* open; SELECT 2;"]


# --- positions -----------------------------------------------------------------------------


def test_positions_after_multiline_comments() -> None:
    sql = "/* header\n   spans\n   lines */\n\n   SELECT 1;  -- c\n\tSELECT\n 2;"
    first, second = split_statements(sql)
    assert (first.line, first.column) == (5, 4)
    assert (second.line, second.column) == (6, 2)
    for item in (first, second):
        assert sql[item.start : item.start + len(item.text)] == item.text
        assert line_col(sql, item.start) == (item.line, item.column)


def test_positions_with_crlf_line_endings() -> None:
    sql = "-- x\r\nSELECT 1;\r\n\r\n  SELECT\r\n  2;\r\n"
    first, second = split_statements(sql)
    assert (first.line, first.column, first.text) == (2, 1, "SELECT 1")
    assert (second.line, second.column, second.text) == (4, 3, "SELECT\r\n  2")


def test_positions_of_several_statements_on_one_line() -> None:
    sql = "SELECT 1; SELECT 'é'; SELECT 3"
    assert [(s.line, s.column) for s in split_statements(sql)] == [(1, 1), (1, 11), (1, 23)]


def test_line_col() -> None:
    sql = "ab\ncd\r\nef"
    assert line_col(sql, 0) == (1, 1)
    assert line_col(sql, 1) == (1, 2)
    assert line_col(sql, 3) == (2, 1)
    assert line_col(sql, 7) == (3, 1)
    assert line_col(sql, len(sql)) == (3, 3)


# --- the directive -------------------------------------------------------------------------


def test_directive_constant() -> None:
    assert NO_TRANSACTION_DIRECTIVE == "patcher:no-transaction"


@pytest.mark.parametrize(
    "sql",
    [
        "-- patcher:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);",
        "\n\n-- adds an index\n--PATCHER:No-Transaction  \nSELECT 1;",
        "--   patcher:no-transaction\t\r\nSELECT 1;",
        "/* licence */\n-- patcher:no-transaction\nSELECT 1;",
        "-- patcher:no-transaction",
    ],
)
def test_directive_in_leading_comments(sql: str) -> None:
    assert has_no_transaction_directive(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1;\n-- patcher:no-transaction\nSELECT 2;",
        "SELECT 1 -- patcher:no-transaction\n;",
        "-- patcher:no-transaction please\nSELECT 1;",
        "-- patcher: no-transaction\nSELECT 1;",
        "/* -- patcher:no-transaction */\nSELECT 1;",
        "SELECT '\n-- patcher:no-transaction\n';",
        "-- patcher:transaction\nSELECT 1;",
        "",
    ],
)
def test_directive_absent_or_too_late(sql: str) -> None:
    assert not has_no_transaction_directive(sql)


# --- decoding ------------------------------------------------------------------------------


def test_decode_utf8_and_strip_bom() -> None:
    assert decode_script("1_a.up.sql", "SELECT 'é';".encode()) == "SELECT 'é';"
    assert decode_script("1_a.up.sql", b"\xef\xbb\xbfSELECT 1;") == "SELECT 1;"


def test_decode_rejects_non_utf8_naming_file_byte_and_line() -> None:
    data = "SELECT 1;\nSELECT 'é';\n".encode() + b"SELECT '\xe9';\n"
    with pytest.raises(InvalidSource) as caught:
        decode_script("0002_latin1.up.sql", data)
    err = caught.value
    offset = data.index(b"\xe9")
    assert err.details == {"file": "0002_latin1.up.sql"}
    assert "0002_latin1.up.sql" in err.message
    assert f"byte {offset}" in err.message
    assert "line 3" in err.message
    assert "UTF-8" in err.message
    assert isinstance(err.__cause__, UnicodeDecodeError)


def test_decode_reports_offsets_in_the_file_including_the_bom() -> None:
    with pytest.raises(InvalidSource, match=r"byte 4 \(line 1\)"):
        decode_script("x.up.sql", b"\xef\xbb\xbfS\xffELECT")


def test_decode_rejects_utf16() -> None:
    with pytest.raises(InvalidSource, match="UTF-8"):
        decode_script("u16.up.sql", "SELECT 1;".encode("utf-16"))
    with pytest.raises(InvalidSource, match=r"NUL byte at byte 1 \(line 1\).*UTF-16"):
        decode_script("u16le.up.sql", "SELECT 1;".encode("utf-16-le"))


# --- statement classification --------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("CREATE INDEX CONCURRENTLY i ON t (a)", "CREATE INDEX CONCURRENTLY"),
        ("create unique index concurrently if not exists i on t (a)", "CREATE INDEX CONCURRENTLY"),
        ("CREATE /* why */ INDEX\n  CONCURRENTLY ON t (a)", "CREATE INDEX CONCURRENTLY"),
        ("DROP INDEX CONCURRENTLY IF EXISTS i", "DROP INDEX CONCURRENTLY"),
        ("REINDEX INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY"),
        ("REINDEX TABLE CONCURRENTLY t", "REINDEX CONCURRENTLY"),
        ("REINDEX (VERBOSE, CONCURRENTLY) TABLE t", "REINDEX CONCURRENTLY"),
        ("REINDEX SCHEMA public", "REINDEX SCHEMA"),
        ("REINDEX DATABASE app", "REINDEX DATABASE"),
        ("REINDEX SYSTEM", "REINDEX SYSTEM"),
        ("VACUUM", "VACUUM"),
        ("vacuum (analyze) t", "VACUUM"),
        ("CREATE DATABASE app2", "CREATE DATABASE"),
        ("DROP DATABASE IF EXISTS app2", "DROP DATABASE"),
        ("CREATE TABLESPACE fast LOCATION '/ssd'", "CREATE TABLESPACE"),
        ("DROP TABLESPACE fast", "DROP TABLESPACE"),
        ("ALTER SYSTEM SET work_mem = '64MB'", "ALTER SYSTEM"),
        ('ALTER DATABASE "my db" SET TABLESPACE fast', "ALTER DATABASE SET TABLESPACE"),
        (
            "ALTER TABLE m DETACH PARTITION m_2020 CONCURRENTLY",
            "ALTER TABLE DETACH PARTITION CONCURRENTLY",
        ),
        ("DISCARD ALL", "DISCARD ALL"),
        ("COMMIT", "COMMIT"),
        ("commit and chain", "COMMIT"),
        ("END", "COMMIT"),
        ("ROLLBACK", "ROLLBACK"),
        ("ABORT WORK", "ROLLBACK"),
        ("BEGIN", "BEGIN"),
        ("begin isolation level serializable", "BEGIN"),
        ("START TRANSACTION", "START TRANSACTION"),
        ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"),
        ("COMMIT PREPARED 'x'", "COMMIT PREPARED"),
        ("ROLLBACK PREPARED 'x'", "ROLLBACK PREPARED"),
    ],
)
def test_non_transactional_commands(sql: str, name: str) -> None:
    assert non_transactional(stmt(sql)) == name


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE INDEX idx_concurrently ON t (a)",
        'CREATE INDEX "concurrently" ON t (a)',
        "CREATE INDEX i ON t (a) -- CONCURRENTLY",
        "CREATE INDEX /* CONCURRENTLY */ i ON t (a)",
        "SELECT 'CREATE INDEX CONCURRENTLY i ON t (a)'",
        "COMMENT ON TABLE t IS 'VACUUM; COMMIT'",
        "INSERT INTO log VALUES ('DROP DATABASE x')",
        "DROP INDEX i",
        "REINDEX TABLE t",
        "REINDEX (CONCURRENTLY false) TABLE t",
        "ANALYZE t",
        "ALTER DATABASE app SET search_path = app",
        "ALTER TABLE t SET TABLESPACE fast",
        "ALTER TABLE m DETACH PARTITION m_2020",
        "CREATE TABLE database_log (id int)",
        "ROLLBACK TO SAVEPOINT s",
        "ROLLBACK WORK TO s",
        "SAVEPOINT s",
        "PREPARE q AS SELECT 1",
        "DO $$ BEGIN COMMIT; END $$",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END",
        "CLUSTER t USING i",
        "CLUSTER VERBOSE t",
        "-- just a comment",
    ],
)
def test_transactional_commands(sql: str) -> None:
    assert non_transactional(stmt(sql)) is None


@pytest.mark.parametrize(
    ("sql", "control"),
    [
        ("BEGIN", True),
        ("END", True),
        ("ABORT", True),
        ("START TRANSACTION", True),
        ("PREPARE TRANSACTION 'x'", True),
        ("COMMIT PREPARED 'x'", False),
        ("VACUUM", False),
    ],
)
def test_transaction_control_names(sql: str, control: bool) -> None:
    assert (non_transactional(stmt(sql)) in TRANSACTION_CONTROL) is control


def test_classifies_statements_as_split() -> None:
    sql = "-- patcher:no-transaction\n/* c */ CREATE INDEX CONCURRENTLY i ON t (a);\nVACUUM t;"
    assert [non_transactional(s) for s in split_statements(sql)] == [
        "CREATE INDEX CONCURRENTLY",
        "VACUUM",
    ]


@pytest.mark.parametrize(
    "sql",
    [
        "COPY t FROM STDIN",
        "copy t (a, b) from stdin with (format csv)",
        "COPY public.t FROM /* data */ stdin",
    ],
)
def test_copy_from_stdin(sql: str) -> None:
    assert client_copy(stmt(sql))


@pytest.mark.parametrize(
    "sql",
    [
        "COPY t FROM '/var/lib/data.csv'",
        "COPY (SELECT * FROM stdin) TO '/tmp/x'",
        "SELECT 'COPY t FROM STDIN'",
        "INSERT INTO stdin SELECT * FROM t",
        'COPY t FROM "stdin"',
        "",
    ],
)
def test_not_copy_from_stdin(sql: str) -> None:
    assert not client_copy(stmt(sql))


# --- size ----------------------------------------------------------------------------------


def test_large_script_of_inserts() -> None:
    row = "INSERT INTO items (id, name, note) VALUES ({i}, 'item {i}', 'a (note); it''s');\n"
    count = 60_000
    sql = "-- data\n" + "".join(row.format(i=i) for i in range(count))
    assert len(sql) > 5_000_000
    statements = split_statements(sql)
    assert len(statements) == count
    last = statements[-1]
    assert last.text == row.format(i=count - 1).rstrip(";\n")
    assert (last.line, last.column) == (count + 1, 1)
    assert sql[last.start : last.start + len(last.text)] == last.text


# --- property ------------------------------------------------------------------------------


def _joined(pieces: list[str]) -> str:
    return "".join(pieces)


_STRING = st.lists(
    st.sampled_from(["a", ";", " ", "--", "/*", "*/", "$$", '"', "''", "\\", "\n", "é"])
).map(lambda p: "'" + _joined(p) + "'")
_E_STRING = st.lists(st.sampled_from(["a", ";", "\\'", "''", "\\\\", "--", '"'])).map(
    lambda p: "E'" + _joined(p) + "'"
)
_DOLLAR = st.lists(st.sampled_from(["a", ";", "'", '"', "--", "/*", "$", "\n", "$$"])).map(
    lambda p: "$q$" + _joined(p) + "$q$"
)
_QUOTED = st.lists(st.sampled_from(["a", ";", '""', "'", "--", " "]), min_size=1).map(
    lambda p: '"' + _joined(p) + '"'
)
_WORD = st.from_regex(r"[a-z_][a-z0-9_$]{0,6}", fullmatch=True)
_TOKEN = st.one_of(
    _WORD, _STRING, _E_STRING, _DOLLAR, _QUOTED, st.sampled_from(["$1", "42", "(a; b)", "/**/"])
)
_STATEMENT = st.builds(
    lambda head, rest: " ".join([head, *rest]),
    st.sampled_from(["SELECT", "INSERT", "UPDATE", "DELETE", "VALUES", "create"]),
    st.lists(_TOKEN, max_size=6),
)
_GAP = st.lists(
    st.sampled_from([" ", "\n", "\r\n", "\t", "-- c; 'x\n", "/* c; /* n */ $$ */", ";"])
).map(_joined)


@settings(deadline=None)
@given(
    statements=st.lists(_STATEMENT, max_size=8),
    gaps=st.lists(_GAP, min_size=9, max_size=9),
    final_semicolon=st.booleans(),
)
def test_split_round_trip(statements: list[str], gaps: list[str], final_semicolon: bool) -> None:
    script = gaps[0]
    for i, text in enumerate(statements):
        last = i == len(statements) - 1
        script += text + ("" if last and not final_semicolon else ";" + gaps[i + 1])
    result = split_statements(script)
    assert [s.text for s in result] == statements
    for item in result:
        assert script[item.start : item.start + len(item.text)] == item.text
        assert line_col(script, item.start) == (item.line, item.column)
