"""What a migration script could break, read from its SQL alone, for a dry run's ``risks``.

Pure: the script is parsed by PostgreSQL's own parser (pglast, the optional extra ``risks``,
imported only when ``analyze`` runs) and no database is touched. Lock, rewrite and data-loss
risks concern only tables that existed before the script: a table the script creates is empty
and unseen by other sessions. Risks come in script order, script-wide ones first.

``analyze`` parses the script one statement at a time (memory follows the largest statement, not
the script) and walks its statements in order; the script-wide checks (one statement per
no-transaction script, statements refused in a transaction) live here, and every other risk
comes from the one rule that ``RULES`` maps the statement's pglast node name to:

- ``rules``: the rule functions, ``rule(walk, stmt)``, one per statement kind;
- ``walk``: ``Risk``, ``Table`` and ``Walk``, what a rule reads (``walk.rows``: did the table
  exist before the script, how big) and reports with (``walk.add``, ``walk.lock``,
  ``walk.rewrite``);
- ``locks``: ``LOCK_MODES``, the table lock each statement kind takes.

Adding a rule: write the function in ``rules.py``, map its node name (``type(stmt).__name__``,
e.g. ``"CreateTrigStmt"``) to it in ``RULES`` below, add the lock it takes to ``LOCK_MODES`` if
it reports ``ACCESS_EXCLUSIVE_LOCK``, and give ``tests/unit/test_risks.py`` a case that has the
new code and one that does not. A node name not in ``RULES`` is not looked at.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

from patcher.sql.lexer import SEMI, Statement, lex, split_statements
from patcher.sql.risks import rules
from patcher.sql.risks.locks import ACCESS_EXCLUSIVE, LOCK_MODES, lock_mode
from patcher.sql.risks.walk import Risk, Table, Walk

__all__ = [
    "ACCESS_EXCLUSIVE",
    "LOCK_MODES",
    "MAX_STATEMENT_CHARS",
    "RULES",
    "Risk",
    "Table",
    "Walk",
    "analyze",
    "lock_mode",
]

MAX_STATEMENT_CHARS: Final = 300

Rule = Callable[[Walk, Any], None]

# The one place a statement kind meets its rule: pglast node name -> rules.<function>.
RULES: Final[dict[str, Rule]] = {
    "AlterTableStmt": rules.alter_table,
    "ClusterStmt": rules.cluster,
    "CreateStmt": rules.create,
    "CreateTableAsStmt": rules.create_as,
    "DeleteStmt": rules.delete_or_update,
    "DiscardStmt": rules.discard,
    "DropStmt": rules.drop,
    "IndexStmt": rules.index,
    "LockStmt": rules.lock_table,
    "RefreshMatViewStmt": rules.refresh,
    "RenameStmt": rules.rename,
    "SelectStmt": rules.select,
    "TruncateStmt": rules.truncate,
    "UpdateStmt": rules.delete_or_update,
    "VacuumStmt": rules.vacuum,
}

# fmt: off
# Statements PostgreSQL refuses inside a transaction block (besides the CONCURRENTLY forms).
_NO_TRANSACTION_KINDS: Final = frozenset({
    "VacuumStmt", "CreatedbStmt", "DropdbStmt", "CreateTableSpaceStmt", "DropTableSpaceStmt",
    "AlterSystemStmt",
})
# fmt: on


def analyze(
    sql: str,
    *,
    transactional: bool,
    existing_tables: Mapping[str, int] | None = None,
    statements: Sequence[Statement] | None = None,
) -> list[Risk]:
    """The risks of running ``sql``; ``existing_tables`` maps pre-existing tables to row counts.

    ``existing_tables=None`` means "not known": every table the script does not create counts
    as existing, size unknown. Bad SQL does not raise: it gives one ``PARSE_ERROR`` risk.
    ``statements`` is ``split_statements(sql)`` when the caller has it already.

    The script is parsed one statement at a time (pglast holds ~19 bytes of parse tree per byte
    of SQL, so a whole 50 MB script would take ~1 GB): each piece is what PostgreSQL's own
    parser calls that statement, from just after the ``;`` before it to its last ``;`` (leading
    comments included), so texts, positions and counts come out as a whole-script parse gives
    them. Positions within a piece are mapped back to the script.
    """
    try:
        from pglast.parser import ParseError, parse_sql
    except ImportError:
        why = "pglast is missing, so the SQL was not checked; install stackflowpatcher[risks]"
        return [Risk("ANALYZER_UNAVAILABLE", "", why)]
    if statements is None:
        statements = split_statements(sql)

    walk = Walk(existing_tables)
    count = 0
    for begin, end in _pieces(sql, statements):
        piece = sql[begin:end]
        try:
            raw_statements = parse_sql(piece)
        except ParseError as exc:
            position = exc.args[1] if len(exc.args) > 1 else None
            at = begin + position if position is not None else None
            return [_parse_error(sql, str(exc.args[0]), at)]
        del piece
        count += len(raw_statements)
        for raw in raw_statements:
            # pglast's parse_sql already turns libpg_query's UTF-8 byte offsets into str
            # indexes (its parse_sql_json does not); stmt_len 0 means "to the end of the piece".
            start = begin + (raw.stmt_location or 0)
            stop = start + raw.stmt_len if raw.stmt_len else end
            walk.statement = _clip(sql, start, stop)
            kind = type(raw.stmt).__name__
            if transactional and _refuses_transaction(kind, raw.stmt):
                walk.add(
                    "CANNOT_RUN_IN_TRANSACTION",
                    "PostgreSQL refuses this statement inside a transaction block; put it in a "
                    "migration of its own with the '-- patcher:no-transaction' directive",
                )
            rule = RULES.get(kind)
            if rule is not None:
                rule(walk, raw.stmt)
    if not transactional and count > 1:
        why = (
            f"this no-transaction script has {count} statements: a failure part-way leaves "
            "the earlier ones applied; put one statement per migration, or make each one safe "
            "to rerun (IF NOT EXISTS)"
        )
        walk.risks.insert(0, Risk("MULTI_STATEMENT_NO_TRANSACTION", _clip(sql), why))
    return walk.risks


def _pieces(sql: str, statements: Sequence[Statement]) -> Iterator[tuple[int, int]]:
    """(begin, end) of each statement as PostgreSQL's parser delimits it in the whole script.

    A statement starts just after the last ``;`` before it (0 for the first, when none) and
    runs to just after the last ``;`` before the next one, empty statements (``;;``) and the
    comments between included; the last one runs to the end of the script.
    """
    gap = 0  # where the blanks, comments and ';'s before the next statement begin
    begin = 0
    for index, stmt in enumerate(statements):
        last_semi = _last_semicolon(sql, gap, stmt.start)
        if index == 0:
            begin = 0 if last_semi < 0 else last_semi + 1
        else:
            end = begin if last_semi < 0 else last_semi + 1
            yield begin, end
            begin = end
        gap = stmt.start + len(stmt.text)  # its end: a slice of one statement, freed at once
    if statements:
        yield begin, len(sql)


def _last_semicolon(sql: str, pos: int, stop: int) -> int:
    """Offset of the last ``;`` outside comments in sql[pos:stop] (blanks, comments and
    ``;`` only, between two statements), or -1."""
    found = -1
    if sql.find(";", pos, stop) < 0:  # the common case: one ';' right after the statement
        return found
    for kind, start, _end in lex(sql, pos):
        if start >= stop:
            break
        if kind == SEMI:
            found = start
    return found


def _refuses_transaction(kind: str, stmt: Any) -> bool:
    if kind in ("IndexStmt", "DropStmt"):
        return bool(stmt.concurrent)
    if kind == "ReindexStmt":
        return any(option.defname == "concurrently" for option in stmt.params or ())
    return kind in _NO_TRANSACTION_KINDS and (kind != "VacuumStmt" or bool(stmt.is_vacuumcmd))


def _parse_error(sql: str, message: str, position: int | None) -> Risk:
    """PARSE_ERROR naming the line and column (pglast reports a str index, not a byte)."""
    where, statement = "", ""
    if position is not None and 0 <= position <= len(sql):
        line_start = sql.rfind("\n", 0, position) + 1
        line = sql.count("\n", 0, position) + 1
        where = f" at line {line}, column {position - line_start + 1}"
        line_end = sql.find("\n", line_start)
        statement = _clip(sql, line_start, len(sql) if line_end < 0 else line_end)
    why = f"the script does not parse: {message}{where}; PostgreSQL would refuse it too"
    return Risk("PARSE_ERROR", statement, why)


_LEADING_SPACE: Final = re.compile(r"\s*")  # \s is str.isspace(), what str.strip() removes


def _clip(text: str, start: int = 0, end: int | None = None) -> str:
    """``text[start:end].strip()``, cut to MAX_STATEMENT_CHARS, without copying the range."""
    end = len(text) if end is None else end
    start = _LEADING_SPACE.match(text, start, end).end()  # type: ignore[union-attr]
    while end > start and text[end - 1].isspace():
        end -= 1
    if end - start <= MAX_STATEMENT_CHARS:
        return text[start:end]
    return text[start : start + MAX_STATEMENT_CHARS - 1].rstrip() + "…"
