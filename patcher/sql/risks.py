"""What a migration script could break, read from its SQL alone, for a dry run's ``risks``.

Pure: the script is parsed by PostgreSQL's own parser (pglast, the optional extra ``risks``,
imported only when ``analyze`` runs) and no database is touched. Lock, rewrite and data-loss
risks concern only tables that existed before the script: a table the script creates is empty
and unseen by other sessions. Risks come in script order, script-wide ones first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from pglast import ast

MAX_STATEMENT_CHARS: Final = 300
ACCESS_EXCLUSIVE: Final = "ACCESS EXCLUSIVE"
_SUE: Final = "SHARE UPDATE EXCLUSIVE"
_SRE: Final = "SHARE ROW EXCLUSIVE"

# The table lock each statement kind takes, from the PostgreSQL manual: "Explicit Locking",
# table-level locks (https://www.postgresql.org/docs/current/explicit-locking.html), and the
# lock notes of each form in https://www.postgresql.org/docs/current/sql-altertable.html.
# Keys are pglast node names, plus the option that changes the mode; an ALTER TABLE subcommand
# (AT_*) not listed takes the "AlterTableStmt" default, and a statement its strongest one.
LOCK_MODES: Final[dict[str, str]] = {
    "AlterTableStmt": ACCESS_EXCLUSIVE,
    "AT_AddConstraint FOREIGN": _SRE,  # on the referenced table too
    **dict.fromkeys(("AT_EnableTrig", "AT_EnableAlwaysTrig", "AT_EnableReplicaTrig"), _SRE),
    **dict.fromkeys(("AT_DisableTrig", "AT_EnableTrigAll", "AT_DisableTrigAll"), _SRE),
    **dict.fromkeys(("AT_EnableTrigUser", "AT_DisableTrigUser"), _SRE),
    **dict.fromkeys(("AT_ValidateConstraint", "AT_SetStatistics", "AT_AttachPartition"), _SUE),
    **dict.fromkeys(("AT_SetOptions", "AT_ResetOptions", "AT_ClusterOn", "AT_DropCluster"), _SUE),
    **dict.fromkeys(("AT_SetRelOptions", "AT_ResetRelOptions"), _SUE),
    "RenameStmt": ACCESS_EXCLUSIVE,  # of a table or a column
    "DropStmt": ACCESS_EXCLUSIVE,  # DROP INDEX: on the index's table as well
    "DropStmt CONCURRENTLY": _SUE,
    "TruncateStmt": ACCESS_EXCLUSIVE,
    "IndexStmt": "SHARE",
    "IndexStmt CONCURRENTLY": _SUE,
    "VacuumStmt": _SUE,
    "VacuumStmt FULL": ACCESS_EXCLUSIVE,
    "ClusterStmt": ACCESS_EXCLUSIVE,
    "RefreshMatViewStmt": ACCESS_EXCLUSIVE,
    "RefreshMatViewStmt CONCURRENTLY": "EXCLUSIVE",
    "LockStmt": ACCESS_EXCLUSIVE,  # LOCK TABLE without IN ... MODE; other modes are as named
}
_LOCK_TABLE_ACCESS_EXCLUSIVE: Final = 8  # LockStmt.mode of AccessExclusiveLock


def lock_mode(kind: str) -> str:
    """The table lock a statement kind (a LOCK_MODES key) takes; ALTER TABLE's by default."""
    return LOCK_MODES.get(kind, LOCK_MODES["AlterTableStmt"])


# fmt: off
# Functions whose value differs per row: a DEFAULT calling one is written into every row.
_VOLATILE_FUNCTIONS: Final = frozenset({
    "random", "random_normal", "clock_timestamp", "timeofday", "nextval", "gen_random_uuid",
    "uuidv4", "uuidv7", "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4",
})
_SERIAL_TYPES: Final = frozenset({
    "serial", "serial2", "serial4", "serial8", "smallserial", "bigserial",
})
# ALTER COLUMN TYPE targets reached without a rewrite from the usual sources (text, varchar,
# a shorter varchar). Only the target is in the script, so this assumes such a source.
_NO_REWRITE_TARGETS: Final = frozenset({"text", "varchar"})
# Statements PostgreSQL refuses inside a transaction block (besides the CONCURRENTLY forms).
_NO_TRANSACTION_KINDS: Final = frozenset({
    "VacuumStmt", "CreatedbStmt", "DropdbStmt", "CreateTableSpaceStmt", "DropTableSpaceStmt",
    "AlterSystemStmt",
})
# fmt: on


@dataclass(frozen=True)
class Risk:
    """One hazard found in a script: a stable ``code``, the statement, and why it matters."""

    code: str
    statement: str
    explanation: str
    table: str | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "code": self.code,
            "statement": self.statement,
            "explanation": self.explanation,
        }
        if self.table is not None:
            out["table"] = self.table
        return out


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

    script = _Script(existing_tables)
    if not transactional and len(raw_statements) > 1:
        script.statement = _clip(sql)
        script.add(
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
        script.statement = _clip(sql[start:end])
        kind = type(raw.stmt).__name__
        if transactional and _refuses_transaction(kind, raw.stmt):
            script.add(
                "CANNOT_RUN_IN_TRANSACTION",
                "PostgreSQL refuses this statement inside a transaction block; put it in a "
                "migration of its own with the '-- patcher:no-transaction' directive",
            )
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(script, raw.stmt)
    return script.risks


@dataclass(frozen=True)
class _Table:
    schema: str | None
    name: str

    @classmethod
    def of(cls, rel: ast.RangeVar | None) -> _Table | None:
        return cls(rel.schemaname, rel.relname) if rel is not None and rel.relname else None

    @property
    def key(self) -> str:
        """Identity within the script; an unqualified name is taken to be in ``public``."""
        return f"{self.schema or 'public'}.{self.name}"

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass
class _Script:
    """What the walk knows: tables the script made or renamed, the statement, risks so far."""

    existing: Mapping[str, int] | None
    created: set[str] = field(default_factory=set)  # _Table.key
    renamed: dict[str, str] = field(default_factory=dict)  # new key -> key before the script
    statement: str = ""
    risks: list[Risk] = field(default_factory=list)

    def add(self, code: str, why: str, table: _Table | None = None) -> None:
        name = str(table) if table is not None else None
        self.risks.append(Risk(code, self.statement, why, name))

    def rows(self, table: _Table | None) -> int | None:
        """Row estimate (-1: unknown) of a table that existed before the script, else None."""
        if table is None or table.key in self.created:
            return None
        if self.existing is None:
            return -1
        key = self.renamed.get(table.key, table.key)
        schema, _, bare = key.partition(".")
        for candidate in (key, bare) if schema == "public" else (key,):
            if candidate in self.existing:
                return int(self.existing[candidate])
        return None

    def lock(self, kind: str, table: _Table | None, rows: int) -> None:
        """ACCESS_EXCLUSIVE_LOCK when statement ``kind`` takes that mode (see LOCK_MODES)."""
        if lock_mode(kind) == ACCESS_EXCLUSIVE:
            self.add(
                "ACCESS_EXCLUSIVE_LOCK",
                f"takes an ACCESS EXCLUSIVE lock on {_label(table, rows)}: every read and "
                "write of it waits until the transaction ends, and so does all that queues "
                "behind; keep the transaction short and SET lock_timeout so it gives up instead",
                table,
            )

    def rewrite(self, table: _Table | None, rows: int, what: str) -> None:
        self.add(
            "TABLE_REWRITE",
            f"{what} rewrites {_label(table, rows)} and all its indexes under an ACCESS "
            "EXCLUSIVE lock, blocking every use of it for as long as that takes",
            table,
        )


def _create(script: _Script, stmt: ast.CreateStmt) -> None:
    if (table := _Table.of(stmt.relation)) is not None:
        script.created.add(table.key)


def _create_as(script: _Script, stmt: ast.CreateTableAsStmt) -> None:
    if (table := _Table.of(stmt.into.rel if stmt.into else None)) is not None:
        script.created.add(table.key)


def _drop(script: _Script, stmt: ast.DropStmt) -> None:
    kind = _enum_name(stmt.removeType)
    if kind == "OBJECT_INDEX" and not stmt.concurrent:
        script.add(
            "DROP_INDEX_NOT_CONCURRENT",
            "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the index's "
            "table, blocking reads and writes; use DROP INDEX CONCURRENTLY (no-transaction)",
        )
    if kind != "OBJECT_TABLE":
        return
    for names in stmt.objects or ():
        parts = [part.sval for part in names]
        table = _Table(parts[-2] if len(parts) > 1 else None, parts[-1])
        rows = script.rows(table)
        script.created.discard(table.key)
        if rows is not None:
            script.add(
                "DROP_TABLE",
                f"deletes {_label(table, rows)} with all its data, beyond undo without a "
                "backup; stop using it first, or rename it now and drop it in a later release",
                table,
            )
            script.lock("DropStmt", table, rows)


def _truncate(script: _Script, stmt: ast.TruncateStmt) -> None:
    for rel in stmt.relations or ():
        table = _Table.of(rel)
        rows = script.rows(table)
        if rows is not None:
            why = f"empties {_label(table, rows)}: every row is gone, beyond undo without a backup"
            script.add("TRUNCATE", why, table)
            script.lock("TruncateStmt", table, rows)


def _delete_or_update(script: _Script, stmt: ast.DeleteStmt | ast.UpdateStmt) -> None:
    table = _Table.of(stmt.relation)
    rows = script.rows(table)
    if stmt.whereClause is not None or rows is None:
        return
    verb, effect = (
        ("DELETE", "removes") if type(stmt).__name__ == "DeleteStmt" else ("UPDATE", "rewrites")
    )
    script.add(
        f"{verb}_WITHOUT_WHERE",
        f"{verb} without WHERE {effect} every row of {_label(table, rows)} in one transaction, "
        "locking them all; add the WHERE clause, or work in batches if all rows are meant",
        table,
    )


def _rename(script: _Script, stmt: ast.RenameStmt) -> None:
    kind = _enum_name(stmt.renameType)
    table = _Table.of(stmt.relation)
    if table is None or kind not in ("OBJECT_TABLE", "OBJECT_COLUMN"):
        return
    if kind == "OBJECT_COLUMN" and _enum_name(stmt.relationType) != "OBJECT_TABLE":
        return
    rows = script.rows(table)
    if kind == "OBJECT_TABLE" and stmt.newname:
        new = _Table(table.schema, stmt.newname).key
        if table.key in script.created:
            script.created.add(new)
        else:
            script.renamed[new] = script.renamed.get(table.key, table.key)
    if rows is None:
        return
    what = "table" if kind == "OBJECT_TABLE" else f"column {stmt.subname} of"
    script.add(
        "RENAME",
        f"renames {what} {_label(table, rows)}: application code still using the old name "
        "fails at once; add the new name alongside (a view, a copied column), deploy, then "
        "drop the old one",
        table,
    )
    script.lock("RenameStmt", table, rows)


def _index(script: _Script, stmt: ast.IndexStmt) -> None:
    table = _Table.of(stmt.relation)
    rows = script.rows(table)
    if stmt.concurrent or rows is None:
        return
    script.add(
        "INDEX_NOT_CONCURRENT",
        f"CREATE INDEX without CONCURRENTLY blocks every write to {_label(table, rows)} for "
        "the whole build; use CREATE INDEX CONCURRENTLY in a no-transaction migration",
        table,
    )


def _vacuum(script: _Script, stmt: ast.VacuumStmt) -> None:
    if stmt.is_vacuumcmd and any(option.defname == "full" for option in stmt.options or ()):
        relations = [relation.relation for relation in stmt.rels or ()]
        _rewrite_all(script, "VacuumStmt FULL", "VACUUM FULL", relations)


def _cluster(script: _Script, stmt: ast.ClusterStmt) -> None:
    _rewrite_all(script, "ClusterStmt", "CLUSTER", [stmt.relation])


def _rewrite_all(
    script: _Script, kind: str, what: str, relations: list[ast.RangeVar | None]
) -> None:
    """VACUUM FULL, CLUSTER: each table named, or with none named every table, is rewritten."""
    tables: list[_Table | None] = [t for t in map(_Table.of, relations) if t is not None]
    for table in tables or [None]:
        rows = script.rows(table) if table is not None else -1
        if rows is not None:
            script.rewrite(table, rows, what)
            script.lock(kind, table, rows)


def _lock_table(script: _Script, stmt: ast.LockStmt) -> None:
    if stmt.mode != _LOCK_TABLE_ACCESS_EXCLUSIVE:
        return
    for rel in stmt.relations or ():
        table = _Table.of(rel)
        rows = script.rows(table)
        if rows is not None:
            script.lock("LockStmt", table, rows)


def _refresh(script: _Script, stmt: ast.RefreshMatViewStmt) -> None:
    table = _Table.of(stmt.relation)
    rows = script.rows(table)
    if rows is not None:
        kind = "RefreshMatViewStmt CONCURRENTLY" if stmt.concurrent else "RefreshMatViewStmt"
        script.lock(kind, table, rows)


def _alter_table(script: _Script, stmt: ast.AlterTableStmt) -> None:
    table = _Table.of(stmt.relation)
    rows = script.rows(table)
    if _enum_name(stmt.objtype) != "OBJECT_TABLE" or rows is None:
        return
    kinds = []
    for cmd in stmt.cmds or ():
        kind, column, definition = _enum_name(cmd.subtype), cmd.name, cmd.def_
        is_fk = _enum_name(getattr(definition, "contype", None)) == "CONSTR_FOREIGN"
        kinds.append(kind + " FOREIGN" if kind == "AT_AddConstraint" and is_fk else kind)
        if kind == "AT_DropColumn":
            script.add(
                "DROP_COLUMN",
                f"drops column {column} of {_label(table, rows)} with its data; code still "
                "reading it fails: stop using it in the application first",
                table,
            )
        elif kind == "AT_AlterColumnType" and not _binary_coercible(definition):
            script.rewrite(table, rows, f"changing the type of column {column}")
        elif kind in ("AT_SetLogged", "AT_SetUnLogged", "AT_SetTableSpace", "AT_SetAccessMethod"):
            script.rewrite(table, rows, kind.removeprefix("AT_"))
        elif kind == "AT_SetNotNull":
            script.add(
                "NOT_NULL_WITHOUT_DEFAULT",
                f"SET NOT NULL on {column} scans all of {_label(table, rows)} under an ACCESS "
                f"EXCLUSIVE lock; first ADD CONSTRAINT ... CHECK ({column} IS NOT NULL) NOT "
                "VALID and VALIDATE it, then SET NOT NULL skips the scan",
                table,
            )
        elif kind == "AT_AddColumn":
            _add_column(script, table, rows, definition)
        elif kind == "AT_AddConstraint":
            _add_constraint(script, table, rows, definition)
    if any(lock_mode(kind) == ACCESS_EXCLUSIVE for kind in kinds):
        script.lock("AlterTableStmt", table, rows)


def _add_column(script: _Script, table: _Table | None, rows: int, col: ast.ColumnDef) -> None:
    constraints = list(col.constraints or ())
    kinds = {_enum_name(c.contype) for c in constraints}
    defaults = [c.raw_expr for c in constraints if _enum_name(c.contype) == "CONSTR_DEFAULT"]
    type_name = col.typeName.names[-1].sval if col.typeName and col.typeName.names else ""
    per_row = (
        any(name in _VOLATILE_FUNCTIONS for default in defaults for name in _functions(default))
        or type_name in _SERIAL_TYPES
        or "CONSTR_IDENTITY" in kinds
        or any(c.generated_kind == "s" for c in constraints)  # GENERATED ... STORED
    )
    if per_row:
        script.rewrite(table, rows, f"adding column {col.colname} with a value computed per row")
    elif kinds & {"CONSTR_NOTNULL", "CONSTR_PRIMARY"} and not defaults:
        script.add(
            "NOT_NULL_WITHOUT_DEFAULT",
            f"adds NOT NULL column {col.colname} without a DEFAULT: this fails if "
            f"{_label(table, rows)} has any row; add a DEFAULT, or add it nullable, backfill, "
            "then SET NOT NULL",
            table,
        )
    for constraint in constraints:
        _add_constraint(script, table, rows, constraint)


def _add_constraint(
    script: _Script, table: _Table | None, rows: int, constraint: ast.Constraint
) -> None:
    kind = _enum_name(constraint.contype)
    if kind in ("CONSTR_FOREIGN", "CONSTR_CHECK") and not constraint.skip_validation:
        code, what = ("FOREIGN_KEY", "FOREIGN KEY") if kind == "CONSTR_FOREIGN" else ("CHECK",) * 2
        script.add(
            f"ADD_{code}_VALIDATING",
            f"adding a {what} constraint reads every row of {_label(table, rows)} while "
            "blocking writes to it; add it NOT VALID, then VALIDATE CONSTRAINT separately",
            table,
        )
    elif (
        kind in ("CONSTR_PRIMARY", "CONSTR_UNIQUE", "CONSTR_EXCLUSION") and not constraint.indexname
    ):
        script.add(
            "INDEX_NOT_CONCURRENT",
            f"builds an index on {_label(table, rows)} under an ACCESS EXCLUSIVE lock; build "
            "it with CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX",
            table,
        )


def _binary_coercible(col: ast.ColumnDef) -> bool:
    """True when ALTER COLUMN TYPE can skip the rewrite, as far as the script tells."""
    if col.raw_default is not None:  # USING: an expression evaluated for every row
        return False
    names = (col.typeName.names if col.typeName else None) or ()
    return bool(names) and names[-1].sval in _NO_REWRITE_TARGETS


def _refuses_transaction(kind: str, stmt: Any) -> bool:
    if kind in ("IndexStmt", "DropStmt"):
        return bool(stmt.concurrent)
    if kind == "ReindexStmt":
        return any(option.defname == "concurrently" for option in stmt.params or ())
    return kind in _NO_TRANSACTION_KINDS and (kind != "VacuumStmt" or bool(stmt.is_vacuumcmd))


def _functions(node: object) -> Iterator[str]:
    """The name of every function an expression calls, at any depth."""
    from pglast.ast import FuncCall, Node

    if isinstance(node, FuncCall) and node.funcname:
        yield node.funcname[-1].sval
    if isinstance(node, Node):
        for attribute in node:
            yield from _functions(getattr(node, attribute))
    elif isinstance(node, tuple):
        for item in node:
            yield from _functions(item)


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


def _label(table: _Table | None, rows: int) -> str:
    name = str(table) if table is not None else "every table of the database"
    return f"{name} (~{rows:,} rows)" if rows >= 0 else name


def _enum_name(value: object) -> str:
    return str(getattr(value, "name", ""))


_HANDLERS: Final[dict[str, Callable[[_Script, Any], None]]] = {
    "AlterTableStmt": _alter_table,
    "ClusterStmt": _cluster,
    "CreateStmt": _create,
    "CreateTableAsStmt": _create_as,
    "DeleteStmt": _delete_or_update,
    "DropStmt": _drop,
    "IndexStmt": _index,
    "LockStmt": _lock_table,
    "RefreshMatViewStmt": _refresh,
    "RenameStmt": _rename,
    "TruncateStmt": _truncate,
    "UpdateStmt": _delete_or_update,
    "VacuumStmt": _vacuum,
}
