"""Migration file bytes to a checked, split script ready for the backend."""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import islice
from typing import TYPE_CHECKING, overload

from patcher.core.checksum import checksum
from patcher.core.errors import InvalidSource
from patcher.core.models import ScriptKey, SourceObject
from patcher.core.record import record
from patcher.sql.classify import (
    NO_TRANSACTION_DIRECTIVE,
    TRANSACTION_CONTROL,
    client_copy,
    decode_script,
    has_no_transaction_directive,
    non_transactional,
)
from patcher.sql.lexer import WORD, Statement, lex, split_statements

if TYPE_CHECKING:
    from patcher.sql.backfill import Backfill

# Transaction control that non_transactional() does not name: it runs inside a transaction
# block, but only the tool may own the block (refused in every script, the directive or not).
_CONTROL_PREPARED = frozenset({"COMMIT PREPARED", "ROLLBACK PREPARED"})
_SAVEPOINT_WORDS = re.compile(r"(?:savepoint|release|rollback|abort)\b", re.IGNORECASE)


@record
class Script:
    obj: SourceObject
    text: str
    checksum: str
    statements: tuple[Statement, ...]
    transactional: bool
    backfill: Backfill | None = None  # '-- patcher:backfill' (patcher/sql/backfill.py)

    @property
    def statement_texts(self) -> Sequence[str]:
        """Each statement's text, sliced when asked for: never all copies at once."""
        return _Texts(self.statements)


ScriptSet = dict[ScriptKey, Script]
"""The scripts a plan runs or records, by (version, direction): ``scripts[step.key]``."""


class _Texts(Sequence[str]):
    def __init__(self, statements: tuple[Statement, ...]) -> None:
        self._statements = statements

    def __len__(self) -> int:
        return len(self._statements)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [s.text for s in self._statements[index]]
        return self._statements[index].text


def transaction_control(stmt: Statement) -> str | None:
    """The name of the transaction control a statement is (BEGIN, COMMIT, SAVEPOINT...), or
    None. Bodies (``DO $$ ... COMMIT ... $$``) are not looked into: they are one statement."""
    command = non_transactional(stmt)
    if command in TRANSACTION_CONTROL or command in _CONTROL_PREPARED:
        return command
    text = stmt.text
    if command is not None or _SAVEPOINT_WORDS.match(text) is None:
        return None
    words = [text[a:b].upper() for kind, a, b in islice(lex(text, 0), 3) if kind == WORD]
    if words[:1] == ["SAVEPOINT"]:
        return "SAVEPOINT"
    if words[:1] == ["RELEASE"]:
        return "RELEASE SAVEPOINT"
    if words[:1] in (["ROLLBACK"], ["ABORT"]) and "TO" in words[1:3]:
        return "ROLLBACK TO SAVEPOINT"
    return None


_STRINGS_SETTING = re.compile(r"standard_conforming_strings", re.IGNORECASE)
# The whole-script screen: a leading literal '_' lets the regex engine skip ahead in C (a
# case-insensitive "standard_..." scans a 50 MB script for seconds; 70 ms this way).
_CONFORMING = re.compile(r"_(?i:conforming)_")
_STRINGS_HARMLESS = re.compile(
    r"(?:show|reset)\s+standard_conforming_strings\s*\Z|set\s+(?:session\s+|local\s+)?"
    r"standard_conforming_strings\s*(?:=|to)\s*'?(?:on|true|yes|1|default)'?\s*\Z",
    re.IGNORECASE,
)
_STRINGS_REASON = (
    "a migration may not change standard_conforming_strings (only SHOW it or SET it on): "
    "turned off, a backslash in a later '...' string changes where that string and its "
    "statement end, so psql, a batch and a long script's chunks would run different statements; "
    "remove the setting and write strings with backslash escapes as E'...'"
)


def _turns_strings_off(text: str) -> bool:
    """Whether a statement naming standard_conforming_strings may change it: anything but
    SHOW, RESET, SET ... on, or a SELECT that only reads it (no set_config)."""
    if _STRINGS_SETTING.search(text) is None or _STRINGS_HARMLESS.match(text):
        return False
    reads = text[:6].upper() == "SELECT" and "set_config" not in text.lower()
    return not reads


def load_script(obj: SourceObject, data: bytes) -> Script:
    """Decode, split and check a script; refuse what could not run as its mode promises."""
    text = decode_script(obj.name, data)
    transactional = not has_no_transaction_directive(text)
    if obj.form is not None:  # another tool's layout: its section and its own mode setting
        text, transactional = _layout_part(obj, text, transactional)
    statements = tuple(split_statements(text))
    if obj.form is not None and obj.form.section == "down" and not statements:
        from patcher.sql.sections import no_down

        raise no_down(obj)
    strings_setting = _CONFORMING.search(text) is not None
    for stmt in statements:  # SPEC section 7 item 5: refused however the statement is written
        copy = client_copy(stmt)
        if copy is not None:
            raise _refused(
                obj,
                stmt,
                f"{copy} copies to or from the client, which a migration script cannot be; "
                "load or unload the data with SQL statements or a server-side file",
            )
        if strings_setting and _turns_strings_off(stmt.text):
            raise _refused(obj, stmt, _STRINGS_REASON)
        control = transaction_control(stmt)
        if control is not None:
            raise _refused(obj, stmt, _control_reason(control, transactional))
        command = non_transactional(stmt)
        if command is not None and transactional:
            raise _refused(
                obj,
                stmt,
                f"{command} cannot run inside a transaction block; {_no_tx_hint(obj)} to "
                "run it statement by statement outside a transaction",
            )
    backfill = None
    if "patcher:backfill" in text[:4096].lower():  # the directive sits in the leading comments
        from patcher.sql.backfill import parse_backfill  # pglast loads only for a backfill

        backfill = parse_backfill(obj, text, statements, transactional)
    return Script(obj, text, checksum(data), statements, transactional, backfill)


def script_mode(obj: SourceObject, data: bytes) -> bool:
    """Whether the script runs in one transaction, as ``load_script`` decides it (the
    directive, or its layout's own setting), without splitting or checking its statements."""
    text = decode_script(obj.name, data)
    transactional = not has_no_transaction_directive(text)
    if obj.form is not None:
        transactional = _layout_part(obj, text, transactional)[1]
    return transactional


def _layout_part(obj: SourceObject, text: str, transactional: bool) -> tuple[str, bool]:
    """A one-file layout's section (line numbers kept) and the mode the layout sets."""
    form = obj.form
    assert form is not None
    if form.section is not None:
        from patcher.sql.sections import section

        text, layout_no_tx = section(obj, text)
        transactional = transactional and not has_no_transaction_directive(text)
    else:
        layout_no_tx = form.no_transaction
    return text, transactional and not layout_no_tx


_LAYOUT_NO_TX = {
    "dbmate": "write '-- migrate:up transaction:false' (or ':down') as the section's marker",
    "goose": "add '-- +goose NO TRANSACTION' to the file",
    "flyway": "put executeInTransaction=false in '{name}.conf' beside it",
}


def _no_tx_hint(obj: SourceObject) -> str:
    layout = obj.form.layout if obj.form is not None else None
    hint = _LAYOUT_NO_TX.get(layout or "")
    if hint is None:
        return f"put '-- {NO_TRANSACTION_DIRECTIVE}' as the script's first line"
    return hint.format(name=obj.name)


def _control_reason(control: str, transactional: bool) -> str:
    if transactional:
        return (
            f"{control} is transaction control, refused in every migration: it would break the "
            "transaction StackFlowPatcher wraps around the script and its history row; remove "
            "it (each migration is already atomic)"
        )
    return (
        f"{control} is transaction control, refused in every migration, also with "
        f"'-- {NO_TRANSACTION_DIRECTIVE}': such a script runs statement by statement in "
        "autocommit, and a transaction it opened would be left uncommitted (or one it ended "
        "would not be the one it meant) while the run reports the version applied; remove it, "
        "or drop the directive to run the whole script in one transaction"
    )


def _refused(obj: SourceObject, stmt: Statement, why: str) -> InvalidSource:
    return InvalidSource(
        f"{obj.name} line {stmt.line}: {why}",
        file=obj.name,
        line=stmt.line,
        column=stmt.column,
    )
