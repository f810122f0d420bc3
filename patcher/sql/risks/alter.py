"""ALTER TABLE: one rule for the statement, a helper per subcommand kind that matters.

Columns added (defaults computed per row, NOT NULL without a default, design rules), type
changes (``rewrites`` decides from the catalog in a dry run), constraints that validate or
build an index under lock, foreign keys and the tables they reach (``reach``), DISABLE
TRIGGER, DROP NOT NULL / CONSTRAINT, partitions. The statement's own lock is reported once,
when one of its subcommands takes ACCESS EXCLUSIVE (``locks.LOCK_MODES``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from patcher.sql.risks import reach, rewrites, session
from patcher.sql.risks.lock_modes import ACCESS_EXCLUSIVE, lock_mode
from patcher.sql.risks.walk import Table, Walk, enum_name, functions, label

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
    called = [name for default in defaults for name in functions(default)]
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
    if table is not None:
        walk.created.add(f"column:{table.key}.{col.colname}")


def _add_constraint(walk: Walk, table: Table | None, rows: int, constraint: ast.Constraint) -> None:
    kind = enum_name(constraint.contype)
    if constraint.conname and table is not None:
        walk.created.add(f"constraint:{table.key}.{constraint.conname}")
    if kind == "CONSTR_FOREIGN" and not constraint.skip_validation:
        locks_referenced(walk, constraint)  # for the whole validating scan
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


def locks_referenced(walk: Walk, constraint: ast.Constraint, *, new_table: bool = False) -> None:
    """A foreign key holds SHARE ROW EXCLUSIVE on the table it references, until the migration
    commits (its triggers go on that table); on an existing referencing table for the whole
    validating scan. Nothing to say when the referenced table is new too."""
    referenced = Table.of(constraint.pktable)
    rows = walk.rows(referenced)
    if rows is not None:
        scan = "" if new_table else " while every row is checked, and"
        walk.add(
            "FOREIGN_KEY_LOCKS_REFERENCED",
            f"the foreign key takes a SHARE ROW EXCLUSIVE lock on the table it references, "
            f"{label(referenced, rows)}: writes to it wait{scan} until this migration commits",
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
        kind == "AT_ColumnDefault"
        and cmd.def_ is None
        and table is not None
        and f"column:{table.key}.{cmd.name}" not in walk.created
    ):
        walk.add(
            "DROP_DEFAULT",
            f"drops the DEFAULT of column {cmd.name} of {table}: INSERTs that leave it out now "
            "write NULL, or fail if it is NOT NULL; deploy code that writes the column first",
            table,
        )
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
