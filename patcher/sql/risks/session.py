"""Rules on what breaks the runner's guarantees: session state a migration leaves behind
(SET ROLE, search_path, a disabled lock_timeout) and transaction control; and the design rules
(column types, identifier length) that lint adds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from patcher.sql.lexer import QIDENT, WORD, lex
from patcher.sql.risks.walk import Table, Walk, calls, enum_name

if TYPE_CHECKING:
    from pglast import ast

_SESSION: Final = {"role": "SET ROLE", "session_authorization": "SET SESSION AUTHORIZATION"}
_TIMEOUTS: Final = ("lock_timeout", "statement_timeout")
MAX_IDENTIFIER_BYTES: Final = 63


def variable_set(walk: Walk, stmt: ast.VariableSetStmt) -> None:
    """SET ROLE / search_path (pending until a RESET), SET lock_timeout = 0."""
    kind, name = enum_name(stmt.kind), stmt.name or ""
    if kind in ("VAR_RESET", "VAR_RESET_ALL", "VAR_SET_DEFAULT"):
        walk.pending_session.pop(name, None) if name else walk.pending_session.clear()
        walk.settings.pop(name, None) if name else walk.settings.clear()
        return
    if name == "timezone" and stmt.args:  # decides timestamp <-> timestamptz rewrites
        walk.settings[name] = str(getattr(stmt.args[0].val, "sval", ""))
    if (name in _SESSION or name == "search_path") and not stmt.is_local:
        walk.pending_session[name] = (walk.statement, walk.offset)
    elif name in _TIMEOUTS and _is_zero(stmt.args):  # SET LOCAL too: it holds for the script
        walk.add(
            "LOCK_TIMEOUT_DISABLED",
            f"{name} = 0 turns off the limit the runner sets, so a statement waiting for a lock "
            "can queue the whole application behind it; set a larger value with SET LOCAL",
        )


def _is_zero(args: Any) -> bool:
    values = [getattr(arg.val, "ival", getattr(arg.val, "sval", None)) for arg in args or ()]
    return values in ([0], ["0"], ["0s"], ["0ms"])


def set_config_call(walk: Walk, stmt: Any) -> None:
    """SELECT set_config('search_path' or 'role', ..., false): a session-wide SET."""
    for call in calls(stmt):
        if call.funcname[-1].sval != "set_config" or len(call.args or ()) != 3:
            continue
        setting = getattr(getattr(call.args[0], "val", None), "sval", None)
        is_local = getattr(getattr(call.args[2], "val", None), "boolval", None)
        if setting in ("search_path", "role") and not is_local:
            walk.pending_session[setting] = (walk.statement, walk.offset)


def toggle_trigger(walk: Walk, table: Table, kind: str, name: str | None) -> None:
    """DISABLE TRIGGER is pending until the same (or a broader) ENABLE in the script."""
    which = name or ("USER" if kind.endswith("User") else "ALL")
    if kind.startswith("AT_Disable"):
        walk.disabled_triggers[(table.key, which)] = (walk.statement, walk.offset, str(table))
        return
    for key in [k for k in walk.disabled_triggers if k[0] == table.key]:
        if which in ("ALL", key[1]) or (which == "USER" and key[1] != "ALL"):
            del walk.disabled_triggers[key]


def report_session(walk: Walk) -> None:
    """At the end of a script: every session setting it changed and never reset, and every
    trigger it disabled and never enabled again."""
    for (_key, which), (statement, offset, table) in walk.disabled_triggers.items():
        walk.statement, walk.offset = statement, offset
        what = f"trigger {which}" if which not in ("ALL", "USER") else f"{which} triggers"
        walk.add(
            "TRIGGER_DISABLED",
            f"disables {what} of {table} and never enables it again: it stays off after the "
            "migration (audit rows, denormalised counts...); ENABLE it in the same script",
        )
    walk.disabled_triggers.clear()
    for name, (statement, offset) in walk.pending_session.items():
        what = _SESSION.get(name, "SET search_path")
        walk.statement, walk.offset = statement, offset
        walk.add(
            "SESSION_STATE",
            f"{what} is never reset in this script: every statement after it runs "
            f"{'as that role' if name in _SESSION else 'with that search_path'} (the runner "
            "restores the session only when the migration ends); use SET LOCAL, or RESET it",
        )
    walk.pending_session.clear()


def transaction(walk: Walk, stmt: ast.TransactionStmt) -> None:
    kind = enum_name(stmt.kind).removeprefix("TRANS_STMT_")
    walk.add(
        "TRANSACTION_CONTROL",
        f"{kind.replace('_', ' ')} is transaction control: the runner owns the transaction "
        "around each migration and refuses such a script (InvalidSource); remove it",
    )


# --- design rules (lint only) -----------------------------------------------------------------


def column_types(walk: Walk, columns: Any, where: str, column: str | None = None) -> None:
    """PREFER_* for the columns a CREATE TABLE, ADD COLUMN or ALTER COLUMN TYPE (``column``,
    the ColumnDef then has no name) defines."""
    if not walk.design:
        return
    for col in columns or ():
        if type(col).__name__ != "ColumnDef" or col.typeName is None:
            continue
        name = col.typeName.names[-1].sval
        advice = _type_advice(name, bool(col.typeName.typmods))
        if advice is not None:
            code, what = advice
            verb = "becomes" if col.colname is None else "is"
            walk.add(code, f"column {col.colname or column} of {where} {verb} {what}")


def _type_advice(name: str, has_typmod: bool) -> tuple[str, str] | None:
    if name in ("int4", "int2", "integer", "smallint", "int"):
        return "PREFER_BIGINT", f"{name}, which runs out at 32 (or 16) bits: use bigint"
    if name in ("serial", "serial4", "serial2", "smallserial", "bigserial", "serial8"):
        return "PREFER_IDENTITY", f"{name}: use bigint GENERATED ALWAYS AS IDENTITY"
    if name in ("varchar", "bpchar") and (has_typmod or name == "bpchar"):
        return "PREFER_TEXT", f"{'char' if name == 'bpchar' else 'varchar'}(n): use text"
    if name == "timestamp":
        return "PREFER_TIMESTAMPTZ", "timestamp without time zone: use timestamptz"
    return None


def identifiers(walk: Walk, text: str) -> None:
    """IDENTIFIER_TOO_LONG for a name PostgreSQL would cut to 63 bytes."""
    if len(text) <= MAX_IDENTIFIER_BYTES:
        return
    for kind, start, end in lex(text, 0):
        if kind not in (WORD, QIDENT) or end - start <= MAX_IDENTIFIER_BYTES // 4:
            continue
        word = text[start:end].strip('"') if kind == QIDENT else text[start:end]
        if len(word.encode()) > MAX_IDENTIFIER_BYTES and not word[:1].isdigit():
            walk.add(
                "IDENTIFIER_TOO_LONG",
                f"{word[:40]}… is {len(word.encode())} bytes: PostgreSQL silently cuts "
                "identifiers to 63, so a later statement naming it in full misses it",
            )
            return
