"""Expand, contract or neutral: what each statement does to the previous release (SPEC 11).

A statement is ``expand`` when every query and write the previous release makes keeps working
after it (it adds or loosens), ``contract`` when one of them can fail (it removes, renames,
narrows or tightens), ``neutral`` when it leaves the schema's shape alone (data changes,
settings, comments, maintenance). The rules, one per statement kind, are in ``rules``;
the README's table lists them.

Pure: the parse comes from pglast (imported only here, when a script is classified), and the
database's catalog, when a run has one, explains a type change (a no-op conversion or a
widening is still contract: the previous release's prepared queries fail on the new result type).
Objects the change set itself creates (earlier statements and files of the pending set, kept
in ``ChangeSet.created``) are unseen by the previous release: dropping, renaming or
constraining them is never contract.

A statement preceded by ``-- patcher:ignore BREAKS_PREVIOUS_RELEASE reason`` (or a file with it
in its leading comments) is still classified, but ``waived`` carries the author's reason: the
expand phase applies it, and lint counts the suppression as used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from patcher.sql.lexer import Statement, line_col
from patcher.sql.phases.model import ChangeSet, Phase, Verdict

__all__ = ["ChangeSet", "Classified", "Phase", "Verdict", "classify_script", "classify_statement"]
BREAKS_CODE: Final = "BREAKS_PREVIOUS_RELEASE"
MIXED_CODE: Final = "MIXED_EXPAND_CONTRACT"
_SHOWN_CHARS: Final = 300


@dataclass(frozen=True)
class Classified:
    """A verdict placed in its script."""

    verdict: Verdict
    statement: str
    offset: int
    line: int
    column: int
    waived: str | None = None  # the author's reason, from a patcher:ignore of BREAKS_CODE

    @property
    def phase(self) -> Phase:
        return self.verdict.phase

    @property
    def holds(self) -> bool:
        """Whether this statement makes its version wait for the contract phase."""
        return self.verdict.phase == "contract" and self.waived is None


# Statements that never change the schema's shape: screened by their first word, not parsed
# (a data script of 2,000 INSERTs costs a regex per statement).
_NEUTRAL_WORDS: Final = frozenset({
    "INSERT", "UPDATE", "DELETE", "SELECT", "VALUES", "SET", "RESET", "COMMENT", "ANALYZE",
    "ANALYSE", "VACUUM", "NOTIFY", "LISTEN", "UNLISTEN", "SHOW", "EXPLAIN", "TABLE", "CHECKPOINT",
    "LOAD", "MERGE",
})  # fmt: skip
_FIRST_WORD: Final = re.compile(r"[A-Za-z]+")
_NEUTRAL_DATA = Verdict(
    "neutral", "INSERT / UPDATE / DELETE / SELECT / SET / COMMENT / ANALYZE",
    "changes data or settings, not the schema the previous release uses",
)  # fmt: skip


def classify_statement(text: str, change_set: ChangeSet) -> list[Verdict]:
    """The verdict of each statement in ``text`` (normally one) against ``change_set``, which
    is updated with what it creates."""
    match = _FIRST_WORD.match(text)
    if match is not None and match[0].upper() in _NEUTRAL_WORDS:
        return [_NEUTRAL_DATA]
    from pglast.parser import ParseError, parse_sql, parse_sql_json

    from patcher.sql.phases.rules import quick_verdict, verdict

    try:
        # The parse as JSON first: ~10x cheaper than pglast's node objects, and enough for the
        # statements a long history is made of (CREATE TABLE, CREATE INDEX).
        tree = json.loads(parse_sql_json(text))["stmts"]
        quick = quick_verdict(tree[0].get("stmt", {}), change_set) if len(tree) == 1 else None
        if quick is not None:
            return [quick]
        raw = parse_sql(text)
    except ParseError as exc:
        why = (
            f"does not parse with this PostgreSQL grammar ({exc.args[0]}): it cannot be "
            "classified, so it is taken to break the previous release"
        )
        return [Verdict("contract", "unparsable statement", why)]
    return [verdict(item.stmt, change_set) for item in raw]


def classify_script(
    text: str, statements: Iterable[Statement], change_set: ChangeSet
) -> list[Classified]:
    """Every statement of a script in order, with its line and any waiver."""
    return list(iter_classified(text, statements, change_set))


def iter_classified(
    text: str, statements: Iterable[Statement], change_set: ChangeSet
) -> Iterator[Classified]:
    """``classify_script`` one statement at a time (lint of a 50 MB script keeps none)."""
    waivers = _waivers(text)
    whole_file = waivers.get(0)
    for stmt in statements:
        body = stmt.text
        waived = waivers.get(stmt.line - 1, whole_file)
        for found in classify_statement(body, change_set):
            shown = body if len(body) <= _SHOWN_CHARS else body[: _SHOWN_CHARS - 1].rstrip() + "…"
            yield Classified(found, shown, stmt.start, stmt.line, stmt.column, waived)


def is_mixed(found: Iterable[Classified]) -> bool:
    """Whether a script holds both expand and contract statements (lint suggests a split)."""
    phases = {c.phase for c in found}
    return {"expand", "contract"} <= phases


_IGNORE: Final = re.compile(
    r"^[ \t]*--[ \t]*patcher:ignore[ \t]+((?:[A-Za-z0-9_]+[ \t]*,[ \t]*)*"
    + BREAKS_CODE
    + r"(?:[ \t]*,[ \t]*[A-Za-z0-9_]+)*)([^\r\n]*)",
    re.MULTILINE | re.IGNORECASE,
)
_MENTIONS: Final = re.compile(BREAKS_CODE, re.IGNORECASE)
_ANY_STATEMENT: Final = re.compile(r"^[ \t]*[A-Za-z(]", re.MULTILINE)


def _waivers(text: str) -> dict[int, str]:
    """Line of each ``patcher:ignore BREAKS_PREVIOUS_RELEASE`` comment -> its reason (line 0:
    the file-wide one, in the leading comments)."""
    if _MENTIONS.search(text) is None:  # the common case: one scan, no copy of the text
        return {}
    first = _ANY_STATEMENT.search(text)
    first_line = line_col(text, first.start())[0] if first is not None else 1 << 30
    out: dict[int, str] = {}
    for match in _IGNORE.finditer(text):
        line = line_col(text, match.start())[0]
        reason = match[2].strip() or "suppressed"
        out[0 if line < first_line else line] = reason
        # a block of suppression lines stacks: the statement sees the last line's neighbour
    return _stacked(out, text)


def _stacked(found: dict[int, str], text: str) -> dict[int, str]:
    """A waiver on line N also covers a statement after more comment lines (a stacked block)."""
    lines = text.splitlines()
    out = dict(found)
    for line, reason in found.items():
        if line == 0:
            continue
        nxt = line + 1
        while nxt <= len(lines) and lines[nxt - 1].lstrip().startswith("--"):
            out.setdefault(nxt, reason)
            nxt += 1
    return out


def contract_lines(found: Iterable[Classified]) -> Iterator[Classified]:
    """The statements that hold their version back (contract and not waived)."""
    return (c for c in found if c.holds)
