"""The risk rules: one function per pglast statement node, ``rule(walk, stmt)``.

Each rule reads its statement, asks ``walk.rows(table)`` whether the table existed before the
script (None: created by it, or not a table), and reports with ``walk.add``, ``walk.lock`` or
``walk.rewrite``. ``patcher.sql.risks.RULES`` maps node names to these functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from patcher.sql.risks import objects, reach, rewrites, session
from patcher.sql.risks.locks import ACCESS_EXCLUSIVE, LOCK_TABLE_ACCESS_EXCLUSIVE, lock_mode
from patcher.sql.risks.walk import Table, Walk, enum_name, label

if TYPE_CHECKING:
    from pglast import ast

# fmt: off
# Functions whose value differs per row: a DEFAULT calling one is written into every row.
_VOLATILE_FUNCTIONS: Final = frozenset({
    "random", "random_normal", "clock_timestamp", "timeofday", "nextval", "gen_random_uuid",
    "uuidv4", "uuidv7", "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4",
})
# Builtins a DEFAULT often calls that are not volatile (offline, any other function "may" be).
_NOT_VOLATILE: Final = frozenset({
    "now", "lower", "upper", "length", "md5", "concat", "jsonb_build_object", "json_build_object",
    "jsonb_build_array", "to_jsonb", "array_to_json", "current_setting", "timezone", "date_trunc",
    "make_interval", "to_timestamp", "transaction_timestamp", "statement_timestamp",
})
_SERIAL_TYPES: Final = frozenset({
    "serial", "serial2", "serial4", "serial8", "smallserial", "bigserial",
})
# ALTER COLUMN TYPE targets reached without a rewrite from the usual sources (text, varchar,
# a shorter varchar). Only the target is in the walk, so this assumes such a source.
_NO_REWRITE_TARGETS: Final = frozenset({"text", "varchar"})
# fmt: on


def create(walk: Walk, stmt: ast.CreateStmt) -> None:
    if (table := Table.of(stmt.relation)) is not None:
        walk.created.add(table.key)
        session.column_types(walk, stmt.tableElts, f"new table {table}")


def create_as(walk: Walk, stmt: ast.CreateTableAsStmt) -> None:
    if (table := Table.of(stmt.into.rel if stmt.into else None)) is not None:
        walk.created.add(table.key)


def drop(walk: Walk, stmt: ast.DropStmt) -> None:
    kind = enum_name(stmt.removeType)
    objects.cascade(walk, stmt)
    if kind == "OBJECT_INDEX":
        fresh = [objects.key_of(kind, names) in walk.created for names in stmt.objects or ()]
        if not stmt.concurrent and not all(fresh):
            walk.add(
                "DROP_INDEX_NOT_CONCURRENT",
                "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the index's "
                "table, blocking reads and writes; use DROP INDEX CONCURRENTLY (no-transaction)",
            )
            for names, new in zip(stmt.objects or (), fresh, strict=True):
                if not new:
                    reach.index_table(walk, objects.key_of(kind, names))
        return
    if kind != "OBJECT_TABLE":
        objects.drop_objects(walk, stmt)
        return
    for names in stmt.objects or ():
        parts = [part.sval for part in names]
        table = Table(parts[-2] if len(parts) > 1 else None, parts[-1])
        rows = walk.rows(table)
        walk.created.discard(table.key)
        if rows is not None:
            walk.add(
                "DROP_TABLE",
                f"deletes {label(table, rows)} with all its data, beyond undo without a "
                "backup; stop using it first, or rename it now and drop it in a later release",
                table,
            )
            walk.lock("DropStmt", table, rows)
            reach.dropped_table(walk, table, enum_name(stmt.behavior) == "DROP_CASCADE")


def truncate(walk: Walk, stmt: ast.TruncateStmt) -> None:
    objects.cascade(walk, stmt)
    for rel in stmt.relations or ():
        table = Table.of(rel)
        rows = walk.rows(table)
        if rows is not None:
            why = f"empties {label(table, rows)}: every row is gone, beyond undo without a backup"
            walk.add("TRUNCATE", why, table)
            walk.lock("TruncateStmt", table, rows)
            if enum_name(stmt.behavior) == "DROP_CASCADE" and table is not None:
                reach.truncated_cascade(walk, table)


def delete_or_update(walk: Walk, stmt: ast.DeleteStmt | ast.UpdateStmt) -> None:
    table = Table.of(stmt.relation)
    rows = walk.rows(table)
    if stmt.whereClause is not None or rows is None:
        return
    verb, effect = (
        ("DELETE", "removes") if type(stmt).__name__ == "DeleteStmt" else ("UPDATE", "rewrites")
    )
    walk.add(
        f"{verb}_WITHOUT_WHERE",
        f"{verb} without WHERE {effect} every row of {label(table, rows)} in one transaction, "
        "locking them all; add the WHERE clause, or work in batches if all rows are meant",
        table,
    )


def rename(walk: Walk, stmt: ast.RenameStmt) -> None:
    kind = enum_name(stmt.renameType)
    table = Table.of(stmt.relation)
    if (
        table is None
        or kind not in ("OBJECT_TABLE", "OBJECT_COLUMN")
        or (kind == "OBJECT_COLUMN" and enum_name(stmt.relationType) != "OBJECT_TABLE")
    ):
        objects.rename_object(walk, stmt)
        return
    rows = walk.rows(table)
    if kind == "OBJECT_TABLE" and stmt.newname:
        new = Table(table.schema, stmt.newname).key
        if table.key in walk.created:
            walk.created.add(new)
        else:
            walk.renamed[new] = walk.renamed.get(table.key, table.key)
    if rows is None:
        return
    what = "table" if kind == "OBJECT_TABLE" else f"column {stmt.subname} of"
    walk.add(
        "RENAME",
        f"renames {what} {label(table, rows)}: application code still using the old name "
        "fails at once; add the new name alongside (a view, a copied column), deploy, then "
        "drop the old one",
        table,
    )
    walk.lock("RenameStmt", table, rows)


def index(walk: Walk, stmt: ast.IndexStmt) -> None:
    objects.index_created(walk, stmt)
    table = Table.of(stmt.relation)
    rows = walk.rows(table)
    if stmt.concurrent or rows is None:
        return
    walk.add(
        "INDEX_NOT_CONCURRENT",
        f"CREATE INDEX without CONCURRENTLY blocks every write to {label(table, rows)} for "
        "the whole build; use CREATE INDEX CONCURRENTLY in a no-transaction migration",
        table,
    )


def vacuum(walk: Walk, stmt: ast.VacuumStmt) -> None:
    if stmt.is_vacuumcmd and any(option.defname == "full" for option in stmt.options or ()):
        relations = [relation.relation for relation in stmt.rels or ()]
        _rewrite_all(walk, "VacuumStmt FULL", "VACUUM FULL", relations)


def cluster(walk: Walk, stmt: ast.ClusterStmt) -> None:
    _rewrite_all(walk, "ClusterStmt", "CLUSTER", [stmt.relation])


def _rewrite_all(walk: Walk, kind: str, what: str, relations: list[ast.RangeVar | None]) -> None:
    """VACUUM FULL, CLUSTER: each table named, or with none named every table, is rewritten."""
    tables: list[Table | None] = [t for t in map(Table.of, relations) if t is not None]
    for table in tables or [None]:
        rows = walk.rows(table) if table is not None else -1
        if rows is not None:
            walk.rewrite(table, rows, what)
            walk.lock(kind, table, rows)


def lock_table(walk: Walk, stmt: ast.LockStmt) -> None:
    if stmt.mode != LOCK_TABLE_ACCESS_EXCLUSIVE:
        return
    for rel in stmt.relations or ():
        table = Table.of(rel)
        rows = walk.rows(table)
        if rows is not None:
            walk.lock("LockStmt", table, rows)


def refresh(walk: Walk, stmt: ast.RefreshMatViewStmt) -> None:
    table = Table.of(stmt.relation)
    rows = walk.rows(table)
    if rows is not None:
        kind = "RefreshMatViewStmt CONCURRENTLY" if stmt.concurrent else "RefreshMatViewStmt"
        if not stmt.concurrent:  # the query runs again into a new heap, swapped in
            walk.rewrite(table, rows, "REFRESH MATERIALIZED VIEW")
        walk.lock(kind, table, rows)


def alter_table(walk: Walk, stmt: ast.AlterTableStmt) -> None:
    table = Table.of(stmt.relation)
    rows = walk.rows(table)
    if enum_name(stmt.objtype) != "OBJECT_TABLE" or rows is None:
        return
    kinds = []
    for cmd in stmt.cmds or ():
        kind, column, definition = enum_name(cmd.subtype), cmd.name, cmd.def_
        is_fk = enum_name(getattr(definition, "contype", None)) == "CONSTR_FOREIGN"
        kinds.append(kind + " FOREIGN" if kind == "AT_AddConstraint" and is_fk else kind)
        if kind == "AT_DropColumn":
            walk.add(
                "DROP_COLUMN",
                f"drops column {column} of {label(table, rows)} with its data; code still "
                "reading it fails: stop using it in the application first",
                table,
            )
            if table is not None:
                reach.column_links(walk, table, column, "drops")
        elif kind == "AT_AlterColumnType":
            _type_change(walk, table, rows, column, definition)
            if table is not None:
                reach.column_links(walk, table, column, "changes the type of")
        elif kind in _REWRITING:
            walk.rewrite(table, rows, _REWRITING[kind])
        elif kind == "AT_SetNotNull":
            walk.add(
                "SET_NOT_NULL_SCANS",
                f"SET NOT NULL on {column} scans all of {label(table, rows)} under an ACCESS "
                f"EXCLUSIVE lock; first ADD CONSTRAINT ... CHECK ({column} IS NOT NULL) NOT "
                "VALID and VALIDATE it, then SET NOT NULL skips the scan",
                table,
            )
        elif kind == "AT_AddColumn":
            _add_column(walk, table, rows, definition)
        elif kind == "AT_AddConstraint":
            _add_constraint(walk, table, rows, definition)
        else:
            _other_subcommand(walk, table, kind, cmd)
    if any(lock_mode(kind) == ACCESS_EXCLUSIVE for kind in kinds):
        walk.lock("AlterTableStmt", table, rows)


def _add_column(walk: Walk, table: Table | None, rows: int, col: ast.ColumnDef) -> None:
    constraints = list(col.constraints or ())
    kinds = {enum_name(c.contype) for c in constraints}
    defaults = [c.raw_expr for c in constraints if enum_name(c.contype) == "CONSTR_DEFAULT"]
    type_name = col.typeName.names[-1].sval if col.typeName and col.typeName.names else ""
    called = [name for default in defaults for name in _functions(default)]
    volatile = rewrites.volatile_default(walk, called) if called else False
    per_row = (
        (any(name in _VOLATILE_FUNCTIONS for name in called) if volatile is None else volatile)
        or type_name in _SERIAL_TYPES
        or "CONSTR_IDENTITY" in kinds
        or any(c.generated_kind == "s" for c in constraints)  # GENERATED ... STORED
    )
    if per_row:
        walk.rewrite(table, rows, f"adding column {col.colname} with a value computed per row")
    elif volatile is None and walk.existing is None and set(called) - _NOT_VOLATILE:
        walk.rewrite(table, rows, f"adding column {col.colname} with that DEFAULT", maybe=True)
    elif kinds & {"CONSTR_NOTNULL", "CONSTR_PRIMARY"} and not defaults:
        walk.add(
            "NOT_NULL_WITHOUT_DEFAULT",
            f"adds NOT NULL column {col.colname} without a DEFAULT: this fails if "
            f"{label(table, rows)} has any row; add a DEFAULT, or add it nullable, backfill, "
            "then SET NOT NULL",
            table,
        )
    for constraint in constraints:
        _add_constraint(walk, table, rows, constraint)
    session.column_types(walk, [col], f"table {table}")


def _add_constraint(walk: Walk, table: Table | None, rows: int, constraint: ast.Constraint) -> None:
    kind = enum_name(constraint.contype)
    if constraint.conname and table is not None:
        walk.created.add(f"constraint:{table.key}.{constraint.conname}")
    if kind == "CONSTR_FOREIGN" and not constraint.skip_validation:
        _locks_referenced(walk, constraint)  # for the whole validating scan
    if kind in ("CONSTR_FOREIGN", "CONSTR_CHECK") and not constraint.skip_validation:
        code, what = ("FOREIGN_KEY", "FOREIGN KEY") if kind == "CONSTR_FOREIGN" else ("CHECK",) * 2
        walk.add(
            f"ADD_{code}_VALIDATING",
            f"adding a {what} constraint reads every row of {label(table, rows)} while "
            "blocking writes to it; add it NOT VALID, then VALIDATE CONSTRAINT separately",
            table,
        )
    elif (
        kind in ("CONSTR_PRIMARY", "CONSTR_UNIQUE", "CONSTR_EXCLUSION") and not constraint.indexname
    ):
        walk.add(
            "INDEX_NOT_CONCURRENT",
            f"builds an index on {label(table, rows)} under an ACCESS EXCLUSIVE lock; build "
            "it with CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX",
            table,
        )


def _binary_coercible(col: ast.ColumnDef) -> bool:
    """True when ALTER COLUMN TYPE can skip the rewrite, as far as the script tells."""
    if col.raw_default is not None:  # USING: an expression evaluated for every row
        return False
    names = (col.typeName.names if col.typeName else None) or ()
    return bool(names) and names[-1].sval in _NO_REWRITE_TARGETS


def _type_change(
    walk: Walk, table: Table | None, rows: int, column: str | None, col: ast.ColumnDef
) -> None:
    """ALTER COLUMN TYPE: decided from the catalog in a dry run (``walk.rewrites``), from the
    target type alone when no catalog answer is at hand, and "may rewrite" offline."""
    what = f"changing the type of column {column}"
    session.column_types(walk, [col], f"table {table}", column)
    decided = rewrites.type_change(walk, table, column, col) if table is not None else None
    if decided is not None:
        if decided:
            walk.rewrite(table, rows, what)
    elif walk.existing is None:
        walk.rewrite(table, rows, what, maybe=True)
    elif not _binary_coercible(col):
        walk.rewrite(table, rows, what)


def _locks_referenced(walk: Walk, constraint: ast.Constraint) -> None:
    """A validating foreign key holds SHARE ROW EXCLUSIVE on the table it references while it
    scans the referencing table (a new, empty table's check is instant: no risk there)."""
    referenced = Table.of(constraint.pktable)
    rows = walk.rows(referenced)
    if rows is not None:
        walk.add(
            "FOREIGN_KEY_LOCKS_REFERENCED",
            f"the foreign key takes a SHARE ROW EXCLUSIVE lock on the table it references, "
            f"{label(referenced, rows)}: writes to it wait while every row is checked, and until "
            "this migration commits",
            referenced,
        )


_REWRITING: Final = {
    "AT_SetLogged": "SetLogged",
    "AT_SetUnLogged": "SetUnLogged",
    "AT_SetTableSpace": "SetTableSpace",
    "AT_SetAccessMethod": "SetAccessMethod",
    "AT_SetExpression": "SET EXPRESSION on a generated column",
}


_TRIGGER_TOGGLES: Final = frozenset({
    "AT_DisableTrig", "AT_DisableTrigAll", "AT_DisableTrigUser",
    "AT_EnableTrig", "AT_EnableTrigAll", "AT_EnableTrigUser",
    "AT_EnableAlwaysTrig", "AT_EnableReplicaTrig",
})  # fmt: skip


def _other_subcommand(walk: Walk, table: Table | None, kind: str, cmd: ast.AlterTableCmd) -> None:
    """DISABLE TRIGGER, DROP NOT NULL, DROP CONSTRAINT, DETACH PARTITION without CONCURRENTLY."""
    if kind in _TRIGGER_TOGGLES and table is not None and table.key not in walk.created:
        session.toggle_trigger(walk, table, kind, cmd.name)
    elif kind == "AT_DropNotNull":
        walk.add("DROP_NOT_NULL", f"column {cmd.name} of {table} may now hold NULL", table)
    elif (
        kind == "AT_DropConstraint"
        and table is not None
        and f"constraint:{table.key}.{cmd.name}" not in walk.created
    ):
        walk.add(
            "DROP_CONSTRAINT",
            f"drops constraint {cmd.name} of {table}: the data it protected can go wrong, "
            "and a unique or primary key takes its index along",
            table,
        )
        reach.dropped_constraint(walk, table, cmd.name)
    if kind in ("AT_AttachPartition", "AT_DetachPartition") and table is not None:
        concurrent = getattr(cmd.def_, "concurrent", False)
        partition = Table.of(getattr(cmd.def_, "name", None))
        if partition is not None and not concurrent and partition.key not in walk.created:
            rows = walk.rows(partition)
            walk.lock("AlterTableStmt", partition, -1 if rows is None else rows)
    if kind == "AT_DetachPartition" and not getattr(cmd.def_, "concurrent", False):
        walk.add(
            "DETACH_PARTITION_NOT_CONCURRENT",
            f"DETACH PARTITION without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on {table}; "
            "use DETACH PARTITION ... CONCURRENTLY in a no-transaction migration",
            table,
        )


def calls(node: object) -> Iterator[Any]:
    """Every function call in a statement or expression, at any depth."""
    from pglast.ast import FuncCall, Node

    if isinstance(node, FuncCall) and node.funcname:
        yield node
    if isinstance(node, Node):
        for attribute in node:
            yield from calls(getattr(node, attribute))
    elif isinstance(node, tuple):
        for item in node:
            yield from calls(item)


def _functions(node: object) -> Iterator[str]:
    """The name of every function an expression calls, at any depth."""
    for call in calls(node):
        yield call.funcname[-1].sval


_UNLOCKS: Final = frozenset({"pg_advisory_unlock", "pg_advisory_unlock_all"})
_RELEASES_LOCK = (
    "releases the run's advisory lock (SPEC 7 item 3): the runner takes it back after the "
    "migration when it is free, and stops with LockLost when another session took it "
    "meanwhile; a migration should never release locks it did not take"
)


def select(walk: Walk, stmt: ast.SelectStmt) -> None:
    """SELECT pg_advisory_unlock_all() (or pg_advisory_unlock) inside a migration."""
    called = set(_functions(stmt.targetList)) & _UNLOCKS
    if called:
        walk.add("RELEASES_RUN_LOCK", f"{', '.join(sorted(called))}() {_RELEASES_LOCK}")
    session.set_config_call(walk, stmt.targetList)


def discard(walk: Walk, stmt: ast.DiscardStmt) -> None:
    """DISCARD ALL drops the session's advisory locks with everything else."""
    if enum_name(stmt.target) == "DISCARD_ALL":
        walk.add("RELEASES_RUN_LOCK", f"DISCARD ALL {_RELEASES_LOCK}")
