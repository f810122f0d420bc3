"""Migration scripts as text: the lexer, and splitting a script into its statements.

Pure functions, no I/O. Splitting follows psql's rules, so a script that runs under ``psql -f``
splits the same way here: ``;`` ends a statement unless it sits inside a string, a quoted
identifier, a dollar-quoted body, a comment, parentheses, or the ``BEGIN ATOMIC ... END`` body of
a ``CREATE [OR REPLACE] FUNCTION|PROCEDURE``. Where psql's BEGIN/END heuristic would merge
statements the server runs one by one, PostgreSQL's parser has the last word (``_server_end``).
``standard_conforming_strings`` is assumed on: a script that may turn it off is refused
(``patcher.sql.scripts``), since psql, a batch and a chunked run would then disagree.

One lexer (``lex``) serves both the splitter and the statement classifiers in
``patcher.sql.classify``. It finds the next interesting token with a compiled regex, so runs of
ordinary text cost no Python per character.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement: its text (no leading comments, no ``;``) and where it starts.

    The splitter passes the whole script and the end offset, so a statement refers to the
    script's text instead of copying it (a 50 MB data script is then held once, not twice);
    ``text`` slices it on demand. ``Statement(text, 0, 1, 1)`` still makes a standalone one.
    """

    _text: str = field(repr=False)
    start: int  # 0-based character offset of text[0] in the script
    line: int  # 1-based
    column: int  # 1-based, in characters
    _end: int = -1  # >= 0: the statement is _text[start:_end]

    @property
    def text(self) -> str:
        return self._text if self._end < 0 else self._text[self.start : self._end]


# Token kinds, the regex group numbers below. Strings, quoted identifiers and words are yielded
# only in word mode; comments are never yielded.
SEMI, OPEN, CLOSE, _BLOCK, _ESTRING, _ESTRING_LOWER, _DOLLAR, WORD, STRING, QIDENT = range(1, 11)
# Every alternative starts with a literal, so the regex engine scans for their first characters
# in C. Each kind is marked by an empty group after its literal (m.lastindex says which).
_PARTS = (
    r";()|\(()|\)()|/\*()|E'()|e'()"
    r"|\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*+)?\$()"
)
_WORD_RE = r"([A-Za-z0-9_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*+)"
_STD = r"'[^']*+(?:''[^']*+)*+'?"  # an unterminated string runs to the end of the script
_QID = r'"[^"]*+(?:""[^"]*+)*+"?'
_LINE_COMMENT = r"--[^\n\r]*+"
# Fast mode swallows, in one match, a run of text that cannot end a statement: strings, quoted
# identifiers, line comments and flat "( ... )" groups, with ordinary text between them. Anything
# rarer (E'', $$, /*, nesting) makes the run stop early and is then lexed token by token.
_ORDINARY = r"(?:[^;()'\"/\-$Ee]++|[Ee](?!')|/(?!\*)|-(?!-))"
_FLAT = rf"\((?:{_ORDINARY}|{_STD}|{_QID})*+\)"
_RUN = rf"(?:{_ORDINARY}*+(?:{_STD}|{_QID}|{_FLAT}|{_LINE_COMMENT}))*+"
_FAST = f"{_FLAT}{_RUN}|{_PARTS}|{_STD}{_RUN}|{_QID}{_RUN}|{_LINE_COMMENT}{_RUN}"
# Word mode: the same tokens plus words (keywords, identifiers, numbers), strings and identifiers.
_WORDY = f"{_PARTS}|{_WORD_RE}|({_STD})|({_QID})|{_LINE_COMMENT}"


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """The tokeniser patterns, compiled on first use: ~20 ms of import time that a status
    call, a refused payload or an up-to-date run never needs."""
    return re.compile(pattern)


_STD_AT = re.compile(_STD)
_ESTRING_BODY = re.compile(r"[^'\\]*+(?:(?:\\[\s\S]|'')[^'\\]*+)*+'?")
_COMMENT_MARK = re.compile(r"/+\*|\*+/")
_BLANK = re.compile(r"(?:[ \t\n\r\f\v]++|--[^\n\r]*+)*+")
_SPACE = " \t\n\r\f\v"


def _is_ident_char(char: str) -> bool:
    return not char.isascii() or char.isalnum() or char in "_$"


def block_comment_end(sql: str, pos: int) -> int:
    """Offset just past the ``*/`` closing a (nested) comment opened before pos; -1 if none."""
    depth = 1
    for mark in _COMMENT_MARK.finditer(sql, pos):
        text = mark.group()
        if text == "/*":
            depth += 1
        elif text[-1] == "/":
            depth -= 1
            if depth == 0:
                return mark.end()
    return -1


def _skip_quoted(
    sql: str, match: re.Match[str], kind: int, barrier: int, words: bool
) -> tuple[int, int, bool]:
    """Skip a block comment, E'' string or dollar-quoted body that match opens.

    Returns where scanning resumes, the new barrier, and whether a string was skipped. In fast
    mode a '$' or E' right after an identifier character belongs to the identifier ("a$b",
    "xe'"), unless that character ended a token we consumed ourselves (the barrier).
    """
    start = match.start()
    if kind == _BLOCK:
        end = block_comment_end(sql, match.end())
        end = len(sql) if end < 0 else end
        return end, end, False
    glued = not words and start > barrier and _is_ident_char(sql[start - 1])
    if kind == _DOLLAR:
        if glued:
            return start + 1, barrier, False
        tag = match.group()
        close = sql.find(tag, match.end())
        end = len(sql) if close < 0 else close + len(tag)
    elif glued:  # "xe'...'": a plain string after an identifier
        end = _STD_AT.match(sql, start + 1).end()  # type: ignore[union-attr]
    else:
        end = _ESTRING_BODY.match(sql, start + 2).end()  # type: ignore[union-attr]
    return end, end, True


def _plain_end(sql: str, pos: int, depth: int) -> int:
    """Offset of the first ';' outside parentheses from pos (at paren depth), or len(sql).

    The hot loop for big data scripts: strings and comments are skipped inside the regex.
    """
    barrier = pos
    fast = _compiled(_FAST)
    while True:
        for match in fast.finditer(sql, pos):
            kind = match.lastindex
            if kind is None:
                continue
            if kind == SEMI:
                if depth == 0:
                    return match.start()
            elif kind == OPEN:
                depth += 1
            elif kind == CLOSE:
                if depth:
                    depth -= 1
            else:
                pos, barrier, _ = _skip_quoted(sql, match, kind, barrier, False)
                break
        else:
            return len(sql)


def lex(sql: str, pos: int) -> Iterator[tuple[int, int, int]]:
    """Yield (kind, start, end) of every significant token from pos; comments are skipped.

    Kinds: SEMI, OPEN, CLOSE, WORD, STRING (any string or dollar body), QIDENT.
    Unterminated strings, identifiers, bodies and comments end at the end of the script.
    """
    barrier = pos
    wordy = _compiled(_WORDY)
    while True:
        for match in wordy.finditer(sql, pos):
            kind = match.lastindex
            if kind is None:
                continue
            if kind in (_BLOCK, _ESTRING, _ESTRING_LOWER, _DOLLAR):
                pos, barrier, is_string = _skip_quoted(sql, match, kind, barrier, True)
                if is_string:
                    yield STRING, match.start(), pos
                break
            yield kind, match.start(), match.end()
        else:
            return


def _skip_blank(sql: str, pos: int) -> int:
    """Offset of the first character at or after pos that is not whitespace or a comment.

    An unterminated block comment counts as text, so the server reports it instead of the rest
    of the script vanishing silently.
    """
    pos = _BLANK.match(sql, pos).end()  # type: ignore[union-attr]
    while sql.startswith("/*", pos):
        end = block_comment_end(sql, pos + 2)
        if end < 0:
            return pos
        pos = _BLANK.match(sql, end).end()  # type: ignore[union-attr]
    return pos


def _starts_routine_check(sql: str, start: int) -> bool:
    """Whether the statement at start begins with the word CREATE (it may define a routine)."""
    return sql[start : start + 6].lower() == "create" and not (
        start + 6 < len(sql) and _is_ident_char(sql[start + 6])
    )


_ROUTINE = ("function", "procedure")


def _is_routine(heads: list[str]) -> bool | None:
    """CREATE [OR REPLACE] FUNCTION|PROCEDURE from the first words; None while undecided."""
    if len(heads) < 2:
        return None
    if heads[1] in _ROUTINE:
        return True
    if heads[1] != "or" or (len(heads) >= 3 and heads[2] != "replace"):
        return False
    return None if len(heads) < 4 else heads[3] in _ROUTINE


def _routine_aware_end(sql: str, start: int) -> tuple[int, bool]:
    """Like _plain_end for a statement starting with CREATE, which may define a routine whose
    BEGIN ATOMIC ... END body holds semicolons (psql tracks BEGIN/CASE/END only there).

    Also says whether that BEGIN tracking ever counted a word: psql's heuristic, which a
    parameter or column named ``begin`` fools into merging what follows (``_server_end``)."""
    depth = 0
    counted = False
    begin = 0  # BEGIN ... END nesting, tracked only in CREATE FUNCTION/PROCEDURE (like psql)
    routine: bool | None = None
    heads: list[str] = []
    for kind, tok_start, tok_end in lex(sql, start):
        if kind == SEMI:
            if depth == 0 and begin == 0:
                return tok_start, counted
        elif kind == OPEN:
            depth += 1
        elif kind == CLOSE:
            if depth:
                depth -= 1
        elif kind == WORD and not sql[tok_start].isdigit():
            word = sql[tok_start:tok_end].lower()
            if routine is None:
                heads.append(word)
                routine = _is_routine(heads)
                if routine is False:  # an ordinary CREATE: finish it in fast mode
                    return _plain_end(sql, tok_end, depth), False
            if routine and depth == 0:
                if word == "begin":
                    begin += 1
                    counted = True
                elif word == "case":
                    if begin:
                        begin += 1
                elif word == "end" and begin:
                    begin -= 1
    return len(sql), counted


PARSE_LIMIT = 4_000_000
"""Characters of a routine definition the parser is asked about at once (its parse tree takes a
few times the text; a routine's own text is far below this)."""


def _server_end(sql: str, start: int, end: int) -> int:
    """Where PostgreSQL ends the routine definition at start, which the lexer ended at end
    after its BEGIN ATOMIC tracking ran: end, or the offset of an earlier ';'.

    psql's BEGIN/END heuristic (which the lexer follows) merges the statements after
    ``CREATE FUNCTION next_of(begin int) ... RETURN begin + 1;`` into the function, while the
    server runs them one by one: a ``COMMIT;`` among them would run unseen (SPEC section 7 item
    5: one statement list, as PostgreSQL splits it). PostgreSQL's parser (pglast, imported only
    here, for such scripts) has the last word: the routine ends at the first ';' before which
    the text parses as one statement (its grammar cannot end one earlier); the rest goes back
    to the lexer. Text that never parses stays the lexer's one statement: the server refuses
    it, and every statement sent with it, before running any."""
    try:
        from pglast.parser import ParseError, split
    except ImportError:  # pragma: no cover - a broken install; the lexer's split stands
        return end

    def one_statement(stop: int) -> bool:
        """Whether sql[start:stop] is one statement with nothing but blanks after it."""
        try:
            found = split(sql[start:stop], with_parser=True, only_slices=True)
        except ParseError:
            return False
        return len(found) == 1 and _skip_blank(sql, start + found[0].stop) >= stop

    if end - start <= PARSE_LIMIT and one_statement(end):  # a real BEGIN ATOMIC body
        return end
    depth = 0
    for kind, tok_start, _ in lex(sql, start):
        if tok_start >= end or tok_start - start > PARSE_LIMIT:
            break
        if kind == OPEN:
            depth += 1
        elif kind == CLOSE:
            depth = max(depth - 1, 0)
        elif kind == SEMI and depth == 0 and one_statement(tok_start):
            return tok_start
    return end


def split_statements(sql: str) -> list[Statement]:
    """Split a script into its statements, dropping empty and comment-only ones."""
    return list(iter_statements(sql))


def iter_statements(sql: str) -> Iterator[Statement]:
    """``split_statements`` one statement at a time (lint: memory then follows one statement)."""
    size = len(sql)
    pos = 0
    line, line_start, counted = 1, 0, 0
    blank = _BLANK.match
    while True:
        start = blank(sql, pos).end()  # type: ignore[union-attr]
        if sql.startswith("/*", start):
            start = _skip_blank(sql, start)
        if start >= size:
            return
        if sql[start] == ";":
            pos = start + 1
            continue
        atomic = False
        if sql[start] in "Cc" and _starts_routine_check(sql, start):
            semi, atomic = _routine_aware_end(sql, start)
        else:
            semi = _plain_end(sql, start, 0)
        if atomic:
            semi = _server_end(sql, start, semi)
        stop = semi
        while sql[stop - 1] in _SPACE:
            stop -= 1
        newlines = sql.count("\n", counted, start)
        if newlines:
            line += newlines
            line_start = sql.rfind("\n", counted, start) + 1
        counted = start
        yield Statement(sql, start, line, start - line_start + 1, stop)
        pos = semi + 1


def line_col(sql: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a 0-based character offset; columns count characters."""
    line = sql.count("\n", 0, offset) + 1
    return line, offset - sql.rfind("\n", 0, offset)
