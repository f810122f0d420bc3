"""What a migration script could break, read from its SQL alone, for a dry run's ``risks``.

Pure: the script is parsed by PostgreSQL's own parser (pglast, the optional extra ``risks``,
imported only when ``analyze`` runs) and no database is touched. Lock, rewrite and data-loss
risks concern only tables that existed before the script: a table the script creates is empty
and unseen by other sessions. Risks come in script order, script-wide ones first.

``analyze`` parses the script and walks its statements in order; the script-wide checks (one
statement per no-transaction script, statements refused in a transaction) live here, and every
other risk comes from the one rule that ``RULES`` maps the statement's pglast node name to:

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

from collections.abc import Callable, Mapping
from typing import Any, Final

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
    "DropStmt": rules.drop,
    "IndexStmt": rules.index,
    "LockStmt": rules.lock_table,
    "RefreshMatViewStmt": rules.refresh,
    "RenameStmt": rules.rename,
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
    sql: str, *, transactional: bool, existing_tables: Mapping[str, int] | None = None
) -> list[Risk]:
    """The risks of running ``sql``; ``existing_tables`` maps pre-existing tables to row counts.

    ``existing_tables=None`` means "not known": every table the script does not create counts
    as existing, size unknown. Bad SQL does not raise: it gives one ``PARSE_ERROR`` risk.
    """
    try:
        from pglast.parser import ParseError, parse_sql
    except ImportError:
        why = "pglast is missing, so the SQL was not checked; install stackflowpatcher[risks]"
        return [Risk("ANALYZER_UNAVAILABLE", "", why)]
    try:
        raw_statements = parse_sql(sql)
    except ParseError as exc:
        position = exc.args[1] if len(exc.args) > 1 else None
        return [_parse_error(sql, str(exc.args[0]), position)]

    walk = Walk(existing_tables)
    if not transactional and len(raw_statements) > 1:
        walk.statement = _clip(sql)
        walk.add(
            "MULTI_STATEMENT_NO_TRANSACTION",
            f"this no-transaction script has {len(raw_statements)} statements: a failure "
            "part-way leaves the earlier ones applied; put one statement per migration, or "
            "make each one safe to rerun (IF NOT EXISTS)",
        )
    for raw in raw_statements:
        # pglast's parse_sql already turns libpg_query's UTF-8 byte offsets into str indexes
        # (its parse_sql_json does not); stmt_len 0 means "to the end of the script".
        start = raw.stmt_location or 0
        end = start + raw.stmt_len if raw.stmt_len else len(sql)
        walk.statement = _clip(sql[start:end])
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
    return walk.risks


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
        statement = _clip(sql[line_start:].split("\n", 1)[0])
    why = f"the script does not parse: {message}{where}; PostgreSQL would refuse it too"
    return Risk("PARSE_ERROR", statement, why)


def _clip(text: str) -> str:
    text = text.strip()
    if len(text) <= MAX_STATEMENT_CHARS:
        return text
    return text[: MAX_STATEMENT_CHARS - 1].rstrip() + "…"
