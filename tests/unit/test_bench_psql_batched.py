"""The apply bench's batched psql floor (issue 32 item 6): the same statements, joined with
psql's ``\\;`` so that each message carries ``per_message`` units."""

from __future__ import annotations

from bench.common import psql_batched
from patcher.sql.lexer import split_statements

UNITS = [
    "BEGIN;\nCREATE TABLE a (x int); -- made here\nINSERT INTO a VALUES (1) -- last\n;\nCOMMIT;\n",
    "BEGIN;\nSELECT ';' AS semi;\nCOMMIT;\n",
    "BEGIN;\nDROP TABLE a;\nCOMMIT;\n",
]


def test_messages_end_at_a_plain_semicolon_every_per_message_units() -> None:
    lines = psql_batched(UNITS, per_message=2).splitlines()
    plain_ends = [line for line in lines if line.endswith(";") and not line.endswith("\\;")]
    # one message per two units: the second unit's COMMIT and the third's end them
    assert plain_ends == ["COMMIT ;", "COMMIT ;"]
    # the first unit takes 5 lines (the separator after its line comment has its own)
    assert lines.index("COMMIT ;") == 7


def test_same_statements_in_the_same_order() -> None:
    text = psql_batched(UNITS, per_message=2).replace("\\;", ";")
    expected = [s.text for unit in UNITS for s in split_statements(unit)]
    assert [s.text for s in split_statements(text)] == expected


def test_a_trailing_line_comment_does_not_swallow_the_separator() -> None:
    text = psql_batched(UNITS, per_message=3)
    assert "INSERT INTO a VALUES (1) -- last\n\\;\n" in text
    assert "SELECT ';' AS semi \\;\n" in text
