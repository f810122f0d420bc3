"""Locks on tables a statement reaches through foreign keys (dry runs: they need the catalog).

Measured on PostgreSQL 15: DROP TABLE of a table with a foreign key, and ALTER TABLE ... DROP
CONSTRAINT of a foreign key, take ACCESS EXCLUSIVE on the referenced table too (its RI
triggers are dropped); TRUNCATE ... CASCADE takes it on every table that references the one
named, transitively, and DROP TABLE ... CASCADE on the tables that reference it directly
(their foreign key goes, they stay). The SQL alone does not say which tables those are:
``Catalog.foreign_keys`` and ``Catalog.referencing`` do.
"""

from __future__ import annotations

from typing import Any, Final

from patcher.sql.risks.walk import Table, Walk, label


def _table(key: str) -> Table:
    schema, _, name = key.partition(".")
    return Table(schema, name)


def _lock(walk: Walk, key: str, how: str) -> None:
    if key in walk.created:
        return
    table = _table(key)
    rows = walk.rows(table)
    walk.add(
        "ACCESS_EXCLUSIVE_LOCK",
        f"takes an ACCESS EXCLUSIVE lock on {label(table, rows if rows is not None else -1)} "
        f"too, {how}: every read and write of it waits until the transaction ends",
        table,
    )


def dropped_table(walk: Walk, table: Table, cascade: bool) -> None:
    """DROP TABLE: its foreign keys' referenced tables; with CASCADE, the referencing ones."""
    if walk.catalog is None:
        return
    key = walk.renamed.get(table.key, table.key)
    for _name, referenced in walk.catalog.foreign_keys(key):
        if referenced != key:
            _lock(walk, referenced, f"reached through a foreign key of {table}")
    if cascade:  # the referencing tables lose their foreign key (one level: they stay)
        for other in walk.catalog.referencing(key):
            if other != key:
                _lock(walk, other, f"whose foreign key to {table} CASCADE drops")


def dropped_constraint(walk: Walk, table: Table, name: str | None) -> None:
    if walk.catalog is None or name is None:
        return
    key = walk.renamed.get(table.key, table.key)
    for constraint, referenced in walk.catalog.foreign_keys(key):
        if constraint == name and referenced != key:
            _lock(walk, referenced, f"the table foreign key {name} references")


def truncated_cascade(walk: Walk, table: Table) -> None:
    """TRUNCATE / DROP ... CASCADE: every table referencing it, transitively."""
    if walk.catalog is None:
        return
    start = walk.renamed.get(table.key, table.key)
    seen, todo = {start}, [start]
    while todo:
        for other in walk.catalog.referencing(todo.pop()):
            if other not in seen:
                seen.add(other)
                todo.append(other)
                _lock(walk, other, f"reached by CASCADE from {table} through a foreign key")


def index_table(walk: Walk, index: str) -> None:
    """DROP INDEX: ACCESS EXCLUSIVE on the index's table (the catalog knows which)."""
    if walk.catalog is None:
        return
    table = walk.catalog.index_table(index)
    if table is not None:
        _lock(walk, table, f"the table of index {index}")


def column_links(walk: Walk, table: Table, column: str | None, verb: str) -> None:
    """A column in a foreign key, either side: dropping it or changing its type rebuilds (or
    drops) the constraint, which locks the table at the other end ACCESS EXCLUSIVE."""
    if walk.catalog is None or column is None:
        return
    key, column = walk.column_before(table, column)
    for other in walk.catalog.column_links(key, column):
        if other != key:
            _lock(walk, other, f"linked by a foreign key on the column this {verb}")


def cascade_dependents(walk: Walk, kind: str, obj: Any, name: str, what: str) -> None:
    """DROP FUNCTION / VIEW / MATERIALIZED VIEW ... CASCADE (``kind``: the pglast ObjectType
    name, ``obj`` the dropped object's node, ``name`` its ``schema.name``): the tables and
    materialized views whose triggers, defaults, constraints, indexes or dependent views go
    with it are locked ACCESS EXCLUSIVE (the catalog's pg_depend says which)."""
    space = _CASCADE_REACH.get(kind)
    if walk.catalog is None or space is None:
        return
    signature = _signature(obj) if space == "function" else name
    if signature is None:
        return
    for other in walk.catalog.cascade_reach(space, signature):
        if other != name:
            _lock(walk, other, f"reached by the CASCADE of {what} {name} (an object on it goes)")


# DROP ... CASCADE whose reach the catalog tells (reach.cascade_dependents).
_CASCADE_REACH: Final = {
    "OBJECT_FUNCTION": "function",
    "OBJECT_PROCEDURE": "function",
    "OBJECT_ROUTINE": "function",
    "OBJECT_VIEW": "relation",
    "OBJECT_MATVIEW": "relation",
}


def _signature(obj: Any) -> str | None:
    """``"schema"."f"("argtype", ...)`` of a DROP FUNCTION object as regprocedure reads it (just
    the name when the statement gives no argument list), or None for an odd shape."""
    from pglast import ast as a

    if not isinstance(obj, a.ObjectWithArgs):
        return None
    name = ".".join(_quote(part.sval) for part in obj.objname or ())  # unqualified: search_path
    if obj.args_unspecified:
        return name
    args = []
    for arg in obj.objargs or ():
        spelled = ".".join(_quote(part.sval) for part in arg.names)
        args.append(spelled + "[]" * len(arg.arrayBounds or ()))
    return f"{name}({', '.join(args)})"


def _quote(part: str) -> str:
    return '"' + part.replace('"', '""') + '"'
