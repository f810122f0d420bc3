"""Migration file bytes to a checked, split script ready for the backend."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import overload

from patcher.core.errors import InvalidSource
from patcher.core.models import ScriptKey, SourceObject
from patcher.sql.classify import (
    NO_TRANSACTION_DIRECTIVE,
    TRANSACTION_CONTROL,
    decode_script,
    has_no_transaction_directive,
    is_copy_from_stdin,
    non_transactional,
)
from patcher.sql.lexer import Statement, split_statements


def checksum(data: bytes) -> str:
    """The SPEC checksum: SHA-256 of the file's bytes, hex."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Script:
    obj: SourceObject
    text: str
    checksum: str
    statements: tuple[Statement, ...]
    transactional: bool

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


def load_script(obj: SourceObject, data: bytes) -> Script:
    """Decode, split and check a script; refuse what could not run as its mode promises."""
    text = decode_script(obj.name, data)
    statements = tuple(split_statements(text))
    transactional = not has_no_transaction_directive(text)
    for stmt in statements:
        if is_copy_from_stdin(stmt):
            raise InvalidSource(
                f"{obj.name} line {stmt.line}: COPY ... FROM STDIN cannot run from a migration "
                "script; load the data with INSERT statements or from a server-side file",
                file=obj.name,
                line=stmt.line,
                column=stmt.column,
            )
        command = non_transactional(stmt)
        if command is None or not transactional:
            continue
        if command in TRANSACTION_CONTROL:
            why = (
                f"{command} would break the transaction StackFlowPatcher wraps around the "
                "script and its history row; remove it (each migration is already atomic)"
            )
        else:
            why = (
                f"{command} cannot run inside a transaction block; put "
                f"'-- {NO_TRANSACTION_DIRECTIVE}' as the script's first line to run it "
                "statement by statement outside a transaction"
            )
        raise InvalidSource(
            f"{obj.name} line {stmt.line}: {why}",
            file=obj.name,
            line=stmt.line,
            column=stmt.column,
        )
    return Script(obj, text, checksum(data), statements, transactional)
