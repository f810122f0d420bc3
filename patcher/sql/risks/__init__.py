"""What a migration script could break, read from its SQL alone, for a dry run's ``risks``.

Pure: the script is parsed by PostgreSQL's own parser (pglast, a core dependency imported
only when ``analyze`` runs, to keep it off the Lambda's cold start) and no database is
touched. Lock, rewrite and data-loss risks concern only objects that existed before the script
(or, for lint, before the change set): a table the script creates is empty and unseen by other
sessions. Risks come in script order, script-wide ones first.

``analyze`` parses the script one statement at a time (memory follows the largest statement, not
the script) and walks its statements in order; the script-wide checks (one statement per
no-transaction script, statements refused in a transaction) live here, and every other risk
comes from the one rule that ``RULES`` maps the statement's pglast node name to:

- ``rules`` and ``alter``: the rule functions, ``rule(walk, stmt)``, one per statement kind
  (``alter`` for ALTER TABLE and its subcommands);
- ``objects`` and ``session``: rules on other objects (drops, renames, SET SCHEMA, REINDEX,
  enums, domains) and on the runner's guarantees (SET ROLE, search_path, transaction control),
  plus the design rules lint adds;
- ``codes``: every code's severity, summary and help (``RULE_INFO``), for lint and docs/lint.md;
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
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from patcher.core.catalog_port import Catalog
from patcher.sql.lexer import SEMI, Statement, lex, line_col, split_statements
from patcher.sql.risks import alter, objects, rules, session
from patcher.sql.risks.codes import RULE_INFO, RuleInfo
from patcher.sql.risks.lock_modes import ACCESS_EXCLUSIVE, LOCK_MODES, lock_mode
from patcher.sql.risks.walk import Risk, Table, Walk

__all__ = [
    "ACCESS_EXCLUSIVE",
    "LOCK_MODES",
    "MAX_STATEMENT_CHARS",
    "RULES",
    "RULE_INFO",
    "Catalog",
    "Risk",
    "RuleInfo",
    "Table",
    "Walk",
    "analyze",
    "lock_mode",
]

MAX_STATEMENT_CHARS: Final = 300

Rule = Callable[[Walk, Any], None]

# The one place a statement kind meets its rule: pglast node name -> rules.<function>.
RULES: Final[dict[str, Rule]] = {
    "AlterDomainStmt": objects.alter_domain,
    "AlterEnumStmt": objects.alter_enum,
    "AlterObjectSchemaStmt": objects.set_schema,
    "AlterTableStmt": alter.alter_table,
    "ClusterStmt": rules.cluster,
    "CreateStmt": rules.create,
    "CreateTableAsStmt": rules.create_as,
    "CreateTrigStmt": rules.create_trigger,
    "DeleteStmt": rules.delete_or_update,
    "DiscardStmt": rules.discard,
    "DropStmt": rules.drop,
    "DropdbStmt": objects.drop_database,
    "IndexStmt": rules.index,
    "LockStmt": rules.lock_table,
    "RefreshMatViewStmt": rules.refresh,
    "ReindexStmt": objects.reindex,
    "RenameStmt": rules.rename,
    "SelectStmt": rules.select,
    "TransactionStmt": session.transaction,
    "TruncateStmt": rules.truncate,
    "UpdateStmt": rules.delete_or_update,
    "VacuumStmt": rules.vacuum,
    "VariableSetStmt": session.variable_set,
    **dict.fromkeys(
        (
            "ViewStmt",
            "CreateSeqStmt",
            "CreateEnumStmt",
            "CreateRangeStmt",
            "CompositeTypeStmt",
            "CreateDomainStmt",
            "CreateFunctionStmt",
            "CreateSchemaStmt",
            "CreateExtensionStmt",
            "CreatePolicyStmt",
        ),
        objects.created,
    ),
}
# Statements whose names IDENTIFIER_TOO_LONG checks (the ones that name new objects).
_NAMING: Final = ("Create", "Alter", "IndexStmt", "RenameStmt", "ViewStmt", "CompositeTypeStmt")

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
    statements: Iterable[Statement] | None = None,
    created: set[str] | None = None,
    design: bool = False,
    catalog: Catalog | None = None,
) -> list[Risk]:
    """The risks of running ``sql``; ``existing_tables`` maps pre-existing tables to row counts.

    ``existing_tables=None`` means "not known" (lint): every table the script does not create
    counts as existing, size unknown. ``created`` carries the objects earlier files of a change
    set made (it is updated with this script's). ``design`` adds the design rules (lint);
    ``catalog`` decides rewrites from the database's catalog (dry runs; see ``rewrites``). A
    statement that does not parse gives a ``PARSE_UNSUPPORTED`` risk naming it, and the walk
    goes on. ``statements`` is ``split_statements(sql)`` (or ``iter_statements``) when the
    caller has it already.

    The script is parsed one statement at a time (pglast holds ~19 bytes of parse tree per byte
    of SQL, so a whole 50 MB script would take ~1 GB): each piece is what PostgreSQL's own
    parser calls that statement, from just after the ``;`` before it to its last ``;`` (leading
    comments included), so texts, positions and counts come out as a whole-script parse gives
    them. Positions within a piece are mapped back to the script.
    """
    try:
        from pglast.parser import ParseError, parse_sql
    except ImportError as exc:  # a broken install: pglast is a core dependency
        why = (
            f"pglast, a dependency of stackflowpatcher, does not import ({exc}), so the SQL "
            "was not checked; reinstall the package (pip install --force-reinstall "
            "stackflowpatcher)"
        )
        return [Risk("ANALYZER_UNAVAILABLE", "", why)]
    if statements is None:
        statements = split_statements(sql)

    walk = Walk(existing_tables, transactional=transactional, design=design, catalog=catalog)
    if created is not None:
        walk.created = created
    count = 0
    for begin, end in _pieces(sql, statements):
        if not walk.enum_values and _is_plain_insert(sql, begin, end):
            count += 1  # no rule looks at an INSERT: data scripts skip the parse
            continue
        piece = sql[begin:end]
        try:
            raw_statements = parse_sql(piece)
        except ParseError as exc:
            where = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
            walk.risks.append(_unsupported(sql, begin, end, str(exc.args[0]), where))
            count += 1
            continue
        del piece
        count += len(raw_statements)
        for raw in raw_statements:
            # pglast's parse_sql already turns libpg_query's UTF-8 byte offsets into str
            # indexes (its parse_sql_json does not); stmt_len 0 means "to the end of the piece".
            start = begin + (raw.stmt_location or 0)
            stop = start + raw.stmt_len if raw.stmt_len else end
            _check(walk, sql, start, stop, raw.stmt)
    session.report_session(walk)
    if not transactional and count > 1:
        why = (
            f"this no-transaction script has {count} statements: a failure part-way leaves "
            "the earlier ones applied; put one statement per migration, or make each one safe "
            "to rerun (IF NOT EXISTS)"
        )
        walk.risks.insert(0, Risk("MULTI_STATEMENT_NO_TRANSACTION", _clip(sql), why))
    return walk.risks


def _pieces(sql: str, statements: Iterable[Statement]) -> Iterator[tuple[int, int]]:
    """(begin, end) of each statement as PostgreSQL's parser delimits it in the whole script.

    A statement starts just after the last ``;`` before it (0 for the first, when none) and
    runs to just after the last ``;`` before the next one, empty statements (``;;``) and the
    comments between included; the last one runs to the end of the script.
    """
    gap = 0  # where the blanks, comments and ';'s before the next statement begin
    begin = 0
    index = -1
    for index, stmt in enumerate(statements):
        last_semi = _last_semicolon(sql, gap, stmt.start)
        if index == 0:
            begin = 0 if last_semi < 0 else last_semi + 1
        else:
            end = begin if last_semi < 0 else last_semi + 1
            yield begin, end
            begin = end
        gap = stmt.start + len(stmt.text)  # its end: a slice of one statement, freed at once
    if index >= 0:
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


def _check(walk: Walk, sql: str, start: int, stop: int, stmt: Any) -> None:
    """Every rule that applies to one parsed statement, sql[start:stop]."""
    walk.offset = _first_token(sql, start, stop)
    walk.statement = _clip(sql, start, stop)
    kind = type(stmt).__name__
    if walk.transactional and _refuses_transaction(kind, stmt):
        walk.add(
            "CANNOT_RUN_IN_TRANSACTION",
            "PostgreSQL refuses this statement inside a transaction block; put it in a "
            "migration of its own with the '-- patcher:no-transaction' directive",
        )
    objects.enum_value_used(walk, stmt)
    rule = RULES.get(kind)
    if rule is not None:
        rule(walk, stmt)
    if kind.startswith(_NAMING):
        session.identifiers(walk, sql[walk.offset : stop])


_SKIP: Final = re.compile(r"(?:\s+|--[^\n]*|/\*(?:[^*]|\*(?!/))*\*/)*")


_INSERT: Final = re.compile(r"insert\s", re.IGNORECASE)


def _is_plain_insert(sql: str, begin: int, end: int) -> bool:
    """A statement starting with INSERT: no rule applies to it unless an enum value was added
    earlier in the transaction (ENUM_VALUE_USED_IN_TRANSACTION)."""
    return _INSERT.match(sql, _first_token(sql, begin, end), end) is not None


def _first_token(sql: str, start: int, stop: int) -> int:
    """The offset of a statement's first token: past the blanks and comments before it."""
    return _SKIP.match(sql, start, stop).end()  # type: ignore[union-attr]


def _refuses_transaction(kind: str, stmt: Any) -> bool:
    if kind in ("IndexStmt", "DropStmt"):
        return bool(stmt.concurrent)
    if kind == "ReindexStmt":
        return any(option.defname == "concurrently" for option in stmt.params or ())
    return kind in _NO_TRANSACTION_KINDS and (kind != "VacuumStmt" or bool(stmt.is_vacuumcmd))


def _unsupported(sql: str, begin: int, end: int, message: str, where: int | None) -> Risk:
    """PARSE_UNSUPPORTED naming the statement sql[begin:end] that pglast could not parse, at
    the token the parser stopped at (``where``, 0-based in the statement's piece): the line
    and column PostgreSQL itself reports for the same error when the script runs."""
    from pglast.parser import get_postgresql_version

    offset = _first_token(sql, begin, end)
    at = begin + where if where is not None and 0 <= where < end - begin else offset
    if where is None and "end of input" in message:  # just past its last character
        at = max(offset, len(sql[offset:end].rstrip()) + offset)
    line, column = line_col(sql, at)
    starts = line_col(sql, offset)[0]
    major = get_postgresql_version()[0]
    why = (
        f"{message} at line {line}, column {column}"
        f"{f' (in the statement at line {starts})' if starts != line else ''}: the statement "
        f"does not parse with PostgreSQL {major}'s grammar: either newer syntax, or a mistake "
        "PostgreSQL will refuse too; its risks were not checked (the other statements' were)"
    )
    return Risk("PARSE_UNSUPPORTED", _clip(sql, offset, end), why, None, offset, at)


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
