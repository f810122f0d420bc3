"""Rules on objects other than a table's columns: what a script creates (so later statements
know the object is new), drops and renames of every kind, SET SCHEMA, REINDEX, enums, domains.

Object identity: relations (tables, views, materialized views, indexes, sequences) share one
namespace in PostgreSQL and are keyed ``schema.name`` (``Table.key``); other objects are keyed
``kind:schema.name`` (``type:``, ``function:``, ``schema:``, ``extension:``, ``trigger:`` and
``policy:`` with the table's key before the name, ``constraint:`` likewise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from patcher.sql.risks import reach
from patcher.sql.risks.walk import Table, Walk, enum_name, label

if TYPE_CHECKING:
    from pglast import ast

# ObjectType -> (namespace prefix, what the explanation calls it). "rel" is Table.key alone.
_KINDS: Final[dict[str, tuple[str, str]]] = {
    "OBJECT_TABLE": ("rel", "table"),
    "OBJECT_FOREIGN_TABLE": ("rel", "foreign table"),
    "OBJECT_VIEW": ("rel", "view"),
    "OBJECT_MATVIEW": ("rel", "materialized view"),
    "OBJECT_INDEX": ("rel", "index"),
    "OBJECT_SEQUENCE": ("rel", "sequence"),
    "OBJECT_TYPE": ("type", "type"),
    "OBJECT_DOMAIN": ("type", "domain"),
    "OBJECT_FUNCTION": ("function", "function"),
    "OBJECT_PROCEDURE": ("function", "procedure"),
    "OBJECT_ROUTINE": ("function", "routine"),
    "OBJECT_AGGREGATE": ("function", "aggregate"),
    "OBJECT_SCHEMA": ("schema", "schema"),
    "OBJECT_EXTENSION": ("extension", "extension"),
    "OBJECT_TRIGGER": ("trigger", "trigger"),
    "OBJECT_POLICY": ("policy", "policy"),
    "OBJECT_RULE": ("rule", "rule"),
    "OBJECT_TABCONSTRAINT": ("constraint", "constraint"),
    "OBJECT_COLUMN": ("column", "column"),
}


def qualified(names: Any) -> str:
    """``schema.name`` of a tuple of pglast String nodes (``public`` when unqualified)."""
    parts = [part.sval for part in names]
    return ".".join(parts) if len(parts) > 1 else f"public.{parts[-1]}"


def _object_names(node: Any) -> Any:
    """The name list of one DropStmt / AlterObjectSchemaStmt object, whatever its shape."""
    from pglast import ast as a

    if isinstance(node, a.ObjectWithArgs):
        return node.objname
    if isinstance(node, a.TypeName):
        return node.names
    if isinstance(node, a.String):
        return (node,)
    return node


def key_of(kind: str, names: Any) -> str:
    """The walk's key of an object of pglast ObjectType name ``kind`` named ``names``."""
    space = _KINDS.get(kind, ("other", ""))[0]
    parts = [part.sval for part in _object_names(names)]
    if space in ("schema", "extension"):
        return f"{space}:{parts[-1]}"
    if space in ("trigger", "policy", "rule"):  # (table..., name)
        return f"{space}:{qualified(_strings(parts[:-1]))}.{parts[-1]}"
    key = qualified(_strings(parts))
    return key if space == "rel" else f"{space}:{key}"


def _strings(parts: list[str]) -> Any:
    from pglast import ast as a

    return tuple(a.String(sval=part) for part in parts)


# --- creations ----------------------------------------------------------------------------


def created(walk: Walk, stmt: Any) -> None:
    """Record what a CREATE statement makes, for the statements (and files) after it."""
    from pglast import ast as a

    key: str | None = None
    if isinstance(stmt, a.ViewStmt | a.CreateSeqStmt):
        key = Table.of(stmt.view if isinstance(stmt, a.ViewStmt) else stmt.sequence).key  # type: ignore[union-attr]
    elif isinstance(stmt, a.CreateEnumStmt | a.CreateRangeStmt):
        key = "type:" + qualified(stmt.typeName)
    elif isinstance(stmt, a.CompositeTypeStmt) and stmt.typevar is not None:
        key = "type:" + Table.of(stmt.typevar).key  # type: ignore[union-attr]
    elif isinstance(stmt, a.CreateDomainStmt):
        key = "type:" + qualified(stmt.domainname)
    elif isinstance(stmt, a.CreateFunctionStmt):
        key = "function:" + qualified(stmt.funcname)
        walk.functions[qualified(stmt.funcname).rpartition(".")[2]] = _volatility(stmt.options)
    elif isinstance(stmt, a.CreateSchemaStmt) and stmt.schemaname:
        key = f"schema:{stmt.schemaname}"
        for element in stmt.schemaElts or ():
            created(walk, element)
    elif isinstance(stmt, a.CreateExtensionStmt):
        key = f"extension:{stmt.extname}"
    elif isinstance(stmt, a.CreateTrigStmt | a.CreatePolicyStmt):
        name = stmt.trigname if isinstance(stmt, a.CreateTrigStmt) else stmt.policy_name
        space = "trigger" if isinstance(stmt, a.CreateTrigStmt) else "policy"
        relation = stmt.relation if isinstance(stmt, a.CreateTrigStmt) else stmt.table
        key = f"{space}:{Table.of(relation).key}.{name}"  # type: ignore[union-attr]
    if key is not None:
        walk.created.add(key)


def _volatility(options: Any) -> str:
    """'v', 's' or 'i' from CREATE FUNCTION's options (VOLATILE when none is given)."""
    for option in options or ():
        if option.defname == "volatility":
            return str(option.arg.sval)[0]
    return "v"


def index_created(walk: Walk, stmt: ast.IndexStmt) -> None:
    table = Table.of(stmt.relation)
    if stmt.idxname and table is not None:
        walk.created.add(Table(table.schema, stmt.idxname).key)


# --- drops --------------------------------------------------------------------------------


def drop_objects(walk: Walk, stmt: ast.DropStmt) -> None:
    """DROP of anything but a table or an index (rules.drop handles those)."""
    kind = enum_name(stmt.removeType)
    what = _KINDS.get(kind, ("other", kind.removeprefix("OBJECT_").lower()))[1]
    for obj in stmt.objects or ():
        key = key_of(kind, obj)
        if walk.made("rel", key) or key in walk.created:
            walk.created.discard(key)
            continue
        name = key.partition(":")[2] or key
        walk.add(
            "DROP_OBJECT",
            f"drops {what} {name}: whatever still uses it (queries, views, defaults, "
            "triggers) fails; stop using it first and drop it in a later release",
        )
        if kind == "OBJECT_MATVIEW":
            _lock(walk, name, f"materialized view {name}")
        if enum_name(stmt.behavior) == "DROP_CASCADE":
            reach.cascade_dependents(walk, kind, obj, name, what)
        elif kind in ("OBJECT_TRIGGER", "OBJECT_POLICY", "OBJECT_RULE"):
            table = name.rsplit(".", 1)[0]
            _lock(walk, table, f"table {table}")


def _lock(walk: Walk, name: str, what: str) -> None:
    """ACCESS_EXCLUSIVE_LOCK on relation ``name`` (``schema.name``), called ``what``."""
    schema, _, bare = name.rpartition(".")
    table = Table(schema or None, bare)
    rows = walk.rows(table)
    size = label(table, rows)[len(str(table)) :] if rows is not None else ""
    walk.add(
        "ACCESS_EXCLUSIVE_LOCK",
        f"takes an ACCESS EXCLUSIVE lock on {what}{size}: every read and write of it waits "
        "until the transaction ends; keep the transaction short",
        table,
    )


def cascade(walk: Walk, stmt: ast.DropStmt | ast.TruncateStmt) -> None:
    if enum_name(stmt.behavior) == "DROP_CASCADE":
        verb = "TRUNCATE" if type(stmt).__name__ == "TruncateStmt" else "DROP"
        walk.add(
            "DROP_CASCADE",
            f"{verb} ... CASCADE also {'empties' if verb == 'TRUNCATE' else 'drops'} every "
            "dependent object, which the script does not name; drop or empty the dependents "
            "explicitly instead",
        )


def drop_database(walk: Walk, stmt: ast.DropdbStmt) -> None:
    walk.add("DROP_DATABASE", f"drops database {stmt.dbname}; never do that in a migration")


# --- renames and SET SCHEMA -----------------------------------------------------------------


def rename_object(walk: Walk, stmt: ast.RenameStmt) -> None:
    """RENAME of anything but a table or a table's column (rules.rename handles those)."""
    kind = enum_name(stmt.renameType)
    what = _KINDS.get(kind, ("other", kind.removeprefix("OBJECT_").lower()))[1]
    table = Table.of(stmt.relation)
    if kind in ("OBJECT_TABCONSTRAINT", "OBJECT_TRIGGER", "OBJECT_POLICY", "OBJECT_COLUMN"):
        if table is None or table.key in walk.created:
            return
        key = f"{_KINDS[kind][0]}:{table.key}.{stmt.subname}"
        name = f"{stmt.subname} of {table}"
    elif stmt.relation is not None:
        key = name = table.key if table else ""
    elif kind in ("OBJECT_SCHEMA",):
        key, name = f"schema:{stmt.subname}", str(stmt.subname)
    elif stmt.object is not None:
        key = key_of(kind, stmt.object)
        name = key.partition(":")[2]
    else:
        return
    if key in walk.created:
        walk.created.add(_renamed_key(key, stmt.newname))
        return
    walk.add(
        "RENAME",
        f"renames {what} {name} to {stmt.newname}: code and objects still using the old name "
        "fail at once; add the new name alongside, deploy, then drop the old one",
    )
    if kind in _LOCKING_RENAMES and table is not None:
        on_table = kind in ("OBJECT_TRIGGER", "OBJECT_TABCONSTRAINT")
        _lock(walk, table.key, f"{'table' if on_table else what} {table}")


# Renames that take ACCESS EXCLUSIVE on the relation (PostgreSQL 15: renametrig,
# RenameConstraint, RenameRelation); an index rename takes SHARE UPDATE EXCLUSIVE.
_LOCKING_RENAMES: Final = (
    "OBJECT_TRIGGER",
    "OBJECT_TABCONSTRAINT",
    "OBJECT_VIEW",
    "OBJECT_MATVIEW",
)


def _renamed_key(key: str, new: str | None) -> str:
    head, _, _old = key.rpartition(".")
    return f"{head}.{new}" if head else f"{key.partition(':')[0]}:{new}"


def set_schema(walk: Walk, stmt: ast.AlterObjectSchemaStmt) -> None:
    kind = enum_name(stmt.objectType)
    what = _KINDS.get(kind, ("other", kind.removeprefix("OBJECT_").lower()))[1]
    table = Table.of(stmt.relation)
    key = table.key if table is not None else key_of(kind, stmt.object or ())
    if key in walk.created:
        return
    name = key.partition(":")[2] or key
    walk.add(
        "SET_SCHEMA",
        f"moves {what} {name} to schema {stmt.newschema}: queries naming its old schema (or "
        "finding it through search_path) fail; treat it like a rename",
    )
    if table is not None:
        _lock(walk, table.key, f"{what} {table}")


# --- REINDEX, enums, domains ------------------------------------------------------------------


def reindex(walk: Walk, stmt: ast.ReindexStmt) -> None:
    if any(option.defname == "concurrently" for option in stmt.params or ()):
        return
    table = Table.of(stmt.relation)
    if table is not None and table.key in walk.created:
        return
    target = str(table) if table is not None else f"every index of {stmt.name or 'it'}"
    walk.add(
        "REINDEX_NOT_CONCURRENT",
        f"REINDEX of {target} without CONCURRENTLY blocks writes to the table for the whole "
        "rebuild; use REINDEX ... CONCURRENTLY in a no-transaction migration",
    )


def alter_enum(walk: Walk, stmt: ast.AlterEnumStmt) -> None:
    key = "type:" + qualified(stmt.typeName)
    if stmt.oldVal is not None:  # RENAME VALUE
        if key not in walk.created:
            walk.add(
                "RENAME",
                f"renames value {stmt.oldVal!r} of enum {key[5:]}: code writing or comparing "
                "the old value fails",
            )
        return
    if walk.transactional and stmt.newVal:
        walk.enum_values.add(stmt.newVal)
    if stmt.newValNeighbor is None and key not in walk.created:
        walk.add(
            "ENUM_VALUE_ORDER",
            f"adds {stmt.newVal!r} to enum {key[5:]} after every existing value, so it sorts "
            "last; say where it belongs with BEFORE or AFTER",
        )


def enum_value_used(walk: Walk, stmt: Any) -> None:
    """A later statement of the transaction that names a value ADD VALUE'd before it."""
    if not walk.enum_values:
        return
    used = sorted(walk.enum_values & set(_strings_in(stmt)))
    if used:
        walk.add(
            "ENUM_VALUE_USED_IN_TRANSACTION",
            f"uses enum value {', '.join(map(repr, used))} added earlier in this transaction: "
            "PostgreSQL refuses it until that transaction commits ('unsafe use of new value'); "
            "add the value in a migration of its own",
        )


def _strings_in(node: Any) -> Any:
    from pglast.ast import A_Const, Node, String

    if isinstance(node, A_Const) and isinstance(node.val, String):
        yield node.val.sval
    elif isinstance(node, Node):
        for attribute in node:
            yield from _strings_in(getattr(node, attribute))
    elif isinstance(node, tuple):
        for item in node:
            yield from _strings_in(item)


def alter_domain(walk: Walk, stmt: ast.AlterDomainStmt) -> None:
    constraint: Any = stmt.def_
    if stmt.subtype != "C" or constraint is None or constraint.skip_validation:
        return
    if "type:" + qualified(stmt.typeName) in walk.created:
        return
    walk.add(
        "DOMAIN_CONSTRAINT_VALIDATING",
        f"ALTER DOMAIN {qualified(stmt.typeName)} ADD CONSTRAINT checks every column of that "
        "domain in every table while they are locked; add it NOT VALID, then VALIDATE it",
    )
