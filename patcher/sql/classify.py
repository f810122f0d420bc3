"""Reading what a statement asks for: the script's encoding, its directive, and the commands
that cannot run inside a transaction block.

Pure functions, no I/O, on top of the lexer in ``patcher.sql.lexer``. Each classifier first
screens a statement with a cheap regex on its first word and tokenises only the few that pass.
"""

from __future__ import annotations

import codecs
import re
from itertools import islice, pairwise

from patcher.core.errors import InvalidSource
from patcher.sql.lexer import CLOSE, OPEN, WORD, Statement, block_comment_end, lex

NO_TRANSACTION_DIRECTIVE = "patcher:no-transaction"
# The names non_transactional() gives transaction control (refused in a migration, not moved out
# of its transaction); every other name it returns is a command that needs the directive.
TRANSACTION_CONTROL = frozenset(
    {"BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK", "PREPARE TRANSACTION"}
)


def decode_script(name: str, data: bytes) -> str:
    """Decode a script as UTF-8 (dropping a leading BOM), or raise InvalidSource saying where."""
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = str(memoryview(data)[skip:], "utf-8")
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        line = data.count(b"\n", 0, offset) + 1
        raise InvalidSource(
            f"{name} is not valid UTF-8: byte {offset} (line {line}) cannot be decoded; "
            "re-save the file as UTF-8",
            file=name,
        ) from exc
    nul = text.find("\0")
    if nul >= 0:  # PostgreSQL refuses NUL in query text; usually a UTF-16 file
        offset = len(text[:nul].encode()) + skip
        line = text.count("\n", 0, nul) + 1
        raise InvalidSource(
            f"{name} contains a NUL byte at byte {offset} (line {line}); it is probably "
            "UTF-16: re-save the file as UTF-8",
            file=name,
        )
    return text


def has_no_transaction_directive(sql: str) -> bool:
    """Whether a leading comment line (before the first statement) is the no-transaction one."""
    pos = 0
    size = len(sql)
    while pos < size:
        pos = _BLANK_SPACE.match(sql, pos).end()  # type: ignore[union-attr]
        if sql.startswith("--", pos):
            end = _LINE_END.search(sql, pos)
            stop = size if end is None else end.start()
            if sql[pos + 2 : stop].strip().lower() == NO_TRANSACTION_DIRECTIVE:
                return True
            pos = stop
        elif sql.startswith("/*", pos):
            pos = block_comment_end(sql, pos + 2)
            if pos < 0:
                return False
        else:
            return False
    return False


_BLANK_SPACE = re.compile(r"[ \t\n\r\f\v]*+")
_LINE_END = re.compile(r"[\n\r]")


def _head(text: str, limit: int = 16) -> list[str]:
    """The first significant tokens of a statement: words upper-cased, '(' and ')', and
    strings or quoted identifiers verbatim."""
    return [
        text[start:end].upper() if kind == WORD else text[start:end]
        for kind, start, end in islice(lex(text, 0), limit)
    ]


def _reindex(tokens: list[str]) -> str | None:
    rest = tokens[1:]
    concurrently = False
    if rest[:1] == ["("]:
        close = rest.index(")") if ")" in rest else len(rest)
        options = rest[1:close]
        for i, option in enumerate(options):
            if option == "CONCURRENTLY":
                value = options[i + 1] if i + 1 < len(options) else "TRUE"
                concurrently = value.upper() not in {"FALSE", "OFF", "0", "'0'", "'FALSE'"}
        rest = rest[close + 1 :]
    kind = rest[0] if rest else ""
    if rest[1:2] == ["CONCURRENTLY"] or concurrently:
        return "REINDEX CONCURRENTLY"
    if kind in {"SCHEMA", "DATABASE", "SYSTEM"}:
        return f"REINDEX {kind}"
    return None


def _transaction_control(tokens: list[str]) -> str | None:
    first, second = tokens[0], tokens[1] if len(tokens) > 1 else ""
    if first in {"COMMIT", "END"}:
        return "COMMIT PREPARED" if second == "PREPARED" else "COMMIT"
    if first in {"ROLLBACK", "ABORT"}:
        if second == "PREPARED":
            return "ROLLBACK PREPARED"
        after = tokens[2:3] if second in {"WORK", "TRANSACTION"} else tokens[1:2]
        return None if after == ["TO"] else "ROLLBACK"  # ROLLBACK TO SAVEPOINT is fine
    if first == "BEGIN":
        return "BEGIN"
    if first in {"START", "PREPARE"} and second == "TRANSACTION":
        return f"{first} TRANSACTION"
    return None


# Cheap screens before tokenising: almost every migration statement fails them.
_FIRST_WORD = re.compile(r"[A-Za-z]+")
_SCREENED_FIRST_WORDS = frozenset({"CREATE", "DROP", "ALTER"})
_DDL_HINTS = re.compile(r"concurrently|database|tablespace|system|subscription", re.IGNORECASE)
_OTHER_FIRST_WORDS = frozenset({
    "VACUUM", "REINDEX", "DISCARD", "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT",
    "PREPARE", "CLUSTER",
})  # fmt: skip


def _cluster(tokens: list[str]) -> str | None:
    """Bare ``CLUSTER`` (every table clustered before: ``CLUSTER;``, ``CLUSTER VERBOSE;``,
    ``CLUSTER (VERBOSE);``) cannot run in a transaction block; ``CLUSTER t`` can, except on a
    partitioned table, which only the server knows (it then fails, inside the transaction)."""
    rest = tokens[1:]
    if rest[:1] == ["("]:
        rest = rest[rest.index(")") + 1 :] if ")" in rest else []
    if rest[:1] == ["VERBOSE"]:
        rest = rest[1:]
    return "CLUSTER" if not rest else None


def _option_off(tokens: list[str], option: str) -> bool:
    """Whether a ``WITH (...)`` list among the tokens sets ``option`` to false."""
    for i, token in enumerate(tokens):
        if token == option:
            value = tokens[i + 1 : i + 3]
            value = value[1:] if value[:1] == ["="] else value[:1]
            return bool(value) and value[0].strip("'").upper() in {"FALSE", "OFF", "0", "NO"}
    return False


def _subscription(first: str, tokens: list[str]) -> str | None:
    """The subscription commands PostgreSQL refuses in a transaction block: creating one with
    its replication slot (the default), and refreshing its publications (``REFRESH
    PUBLICATION``, or ``SET/ADD/DROP PUBLICATION`` without ``refresh = false``). Dropping one
    is refused only when it still has a slot, which only the server knows."""
    if first == "CREATE":
        if _option_off(tokens, "CREATE_SLOT") or _option_off(tokens, "CONNECT"):
            return None
        return "CREATE SUBSCRIPTION"
    if first == "DROP":
        return None
    action = tokens[3:5]
    if action == ["REFRESH", "PUBLICATION"]:
        return "ALTER SUBSCRIPTION REFRESH PUBLICATION"
    if action[:1] in (["SET"], ["ADD"], ["DROP"]) and action[1:] == ["PUBLICATION"]:
        return (
            None
            if _option_off(tokens, "REFRESH")
            else f"ALTER SUBSCRIPTION {action[0]} PUBLICATION"
        )
    return None


def non_transactional(stmt: Statement) -> str | None:
    """The command's name if it cannot run inside a transaction block (or controls one)."""
    text = stmt.text
    match = _FIRST_WORD.match(text)  # a statement starts at its first word (no comments)
    first = match[0].upper() if match else ""
    if first in _SCREENED_FIRST_WORDS:
        if _DDL_HINTS.search(text) is None:
            return None
    elif first not in _OTHER_FIRST_WORDS:
        return None
    tokens = _head(text, 64)
    if not tokens:
        return None
    first, second = tokens[0], tokens[1] if len(tokens) > 1 else ""
    if first == "VACUUM":
        return "VACUUM"
    if first == "CLUSTER":
        return _cluster(tokens)
    if second == "SUBSCRIPTION" and first in _SCREENED_FIRST_WORDS:
        return _subscription(first, tokens)
    if first == "REINDEX":
        return _reindex(tokens)
    if first in {"CREATE", "DROP"}:
        rest = tokens[2:] if first == "CREATE" and second == "UNIQUE" else tokens[1:]
        if rest[:2] == ["INDEX", "CONCURRENTLY"]:
            return f"{first} INDEX CONCURRENTLY"
        if second in {"DATABASE", "TABLESPACE"}:
            return f"{first} {second}"
        return None
    if first == "ALTER":
        if second == "SYSTEM":
            return "ALTER SYSTEM"
        if second == "DATABASE" and tokens[3:5] == ["SET", "TABLESPACE"]:
            return "ALTER DATABASE SET TABLESPACE"
        detach = ("DETACH", "PARTITION") in pairwise(tokens)
        if second == "TABLE" and detach and "CONCURRENTLY" in tokens:
            return "ALTER TABLE DETACH PARTITION CONCURRENTLY"
        return None
    if first == "DISCARD" and second == "ALL":
        return "DISCARD ALL"
    return _transaction_control(tokens)


def client_copy(stmt: Statement) -> str | None:
    """``COPY ... FROM STDIN`` or ``COPY ... TO STDOUT`` (as the statement says it: PostgreSQL
    takes either word on either side) when the statement copies to or from the client, whose
    data a script can neither give nor take; else None."""
    text = stmt.text
    tokens = lex(text, 0)
    first = next(tokens, None)
    if first is None or text[first[1] : first[2]].upper() != "COPY":
        return None
    depth = 0
    previous = ""
    for kind, start, end in tokens:
        if kind == OPEN:
            depth += 1
        elif kind == CLOSE:
            depth = max(depth - 1, 0)
        elif depth == 0:
            word = text[start:end].upper() if kind == WORD else ""
            if previous in {"FROM", "TO"} and word in {"STDIN", "STDOUT"}:
                return f"COPY ... {previous} {word}"
            previous = word
    return None
