"""The risk rules: one function per pglast statement node, ``rule(walk, stmt)``.

Each rule reads its statement, asks ``walk.rows(table)`` whether the table existed before the
script (None: created by it, or not a table), and reports with ``walk.add``, ``walk.lock`` or
``walk.rewrite``. ``patcher.sql.risks.RULES`` maps node names to these functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from patcher.sql.risks import alter, objects, reach, session
from patcher.sql.risks.lock_modes import LOCK_TABLE_ACCESS_EXCLUSIVE
from patcher.sql.risks.walk import Table, Walk, enum_name, functions, label

if TYPE_CHECKING:
    from pglast import ast


def create(walk: Walk, stmt: ast.CreateStmt) -> None:
    if (table := Table.of(stmt.relation)) is not None:
        walk.created.add(table.key)
        session.column_types(walk, stmt.tableElts, f"new table {table}")
    for element in stmt.tableElts or ():  # REFERENCES an existing table: SHARE ROW EXCLUSIVE
        constraints = getattr(element, "constraints", None) or (element,)
        for constraint in constraints:
            if enum_name(getattr(constraint, "contype", None)) == "CONSTR_FOREIGN":
                alter.locks_referenced(walk, constraint, new_table=True)


def create_trigger(walk: Walk, stmt: ast.CreateTrigStmt) -> None:
    """CREATE TRIGGER takes SHARE ROW EXCLUSIVE on its table, until the migration commits."""
    objects.created(walk, stmt)
    table = Table.of(stmt.relation)
    rows = walk.rows(table)
    if rows is not None:
        walk.add(
            "CREATE_TRIGGER_LOCKS_TABLE",
            f"CREATE TRIGGER takes a SHARE ROW EXCLUSIVE lock on {label(table, rows)}: every "
            "write to it waits until this migration commits; keep the transaction short",
            table,
        )


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
    if kind == "OBJECT_COLUMN" and stmt.subname and stmt.newname and rows is not None:
        walk.rename_column(table, stmt.subname, stmt.newname)
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


_UNLOCKS: Final = frozenset({"pg_advisory_unlock", "pg_advisory_unlock_all"})
_RELEASES_LOCK = (
    "releases the run's advisory lock (SPEC 7 item 3): the runner takes it back after the "
    "migration when it is free, and stops with LockLost when another session took it "
    "meanwhile; a migration should never release locks it did not take"
)


def select(walk: Walk, stmt: ast.SelectStmt) -> None:
    """SELECT pg_advisory_unlock_all() (or pg_advisory_unlock) inside a migration."""
    called = set(functions(stmt.targetList)) & _UNLOCKS
    if called:
        walk.add("RELEASES_RUN_LOCK", f"{', '.join(sorted(called))}() {_RELEASES_LOCK}")
    session.set_config_call(walk, stmt.targetList)


def discard(walk: Walk, stmt: ast.DiscardStmt) -> None:
    """DISCARD ALL drops the session's advisory locks with everything else."""
    if enum_name(stmt.target) == "DISCARD_ALL":
        walk.add("RELEASES_RUN_LOCK", f"DISCARD ALL {_RELEASES_LOCK}")
