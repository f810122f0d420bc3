"""The classification rules: pglast node -> ``Verdict`` (see ``phases`` for the terms).

One function per statement kind; ``verdict`` dispatches on the node's class name. A kind with
no rule is classified by its family: ``Create*`` adds (expand), ``Alter*`` and ``Drop*`` may
take away (contract), anything else leaves the schema alone (neutral).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from patcher.sql.phases.alter import alter_table
from patcher.sql.phases.model import ChangeSet, Verdict
from patcher.sql.risks.objects import key_of, qualified
from patcher.sql.risks.walk import Table, enum_name

if TYPE_CHECKING:
    from pglast import ast

_NEW = "only objects this change set creates, which the previous release never uses"


def _expand(kind: str, reason: str) -> Verdict:
    return Verdict("expand", kind, reason)


def _contract(kind: str, reason: str, recipe: str | None = None, catalog: bool = False) -> Verdict:
    return Verdict("contract", kind, reason, recipe, catalog)


def create_table(stmt: Any, cs: ChangeSet) -> Verdict:
    rel = getattr(stmt, "relation", None) or getattr(getattr(stmt, "into", None), "rel", None)
    table = Table.of(rel)
    if table is not None:
        cs.created.add(table.key)
    return _expand("CREATE TABLE", "adds a table the previous release does not know about")


def create_view(stmt: ast.ViewStmt, cs: ChangeSet) -> Verdict:
    table = Table.of(stmt.view)
    if stmt.replace and table is not None and not cs.made(table.key):
        return _expand(
            "CREATE OR REPLACE VIEW",
            "PostgreSQL keeps every column of the view (it may only add columns at the end), "
            "so the previous release's queries of it still run",
        )
    if table is not None:
        cs.created.add(table.key)
    return _expand("CREATE VIEW", "adds a view")


def create_object(stmt: Any, cs: ChangeSet) -> Verdict:
    """Sequences, types, domains, functions, schemas, extensions, triggers, policies."""
    from pglast import ast as a

    name = type(stmt).__name__
    if isinstance(stmt, a.CreatePolicyStmt) and not stmt.permissive:
        table = Table.of(stmt.table)
        if table is not None and not cs.made(table.key):
            return _contract(
                "CREATE POLICY ... AS RESTRICTIVE",
                "a restrictive policy hides rows from (and refuses writes of) the previous "
                "release's role wherever it applies",
            )
    if isinstance(stmt, a.CreateFunctionStmt) and stmt.replace:
        return _expand(
            "CREATE OR REPLACE FUNCTION",
            "PostgreSQL keeps the signature and result type of a replaced function; callers "
            "of the previous release still find it",
        )
    _remember(stmt, cs)
    kind = _CREATE_KINDS.get(name, "CREATE " + name.removeprefix("Create").removesuffix("Stmt"))
    return _expand(kind, "adds an object the previous release does not use")


_CREATE_KINDS: Final = {
    "CreateSeqStmt": "CREATE SEQUENCE",
    "CreateEnumStmt": "CREATE TYPE ... AS ENUM",
    "CompositeTypeStmt": "CREATE TYPE ... AS (...)",
    "CreateDomainStmt": "CREATE DOMAIN",
    "CreateFunctionStmt": "CREATE FUNCTION / PROCEDURE",
    "CreateSchemaStmt": "CREATE SCHEMA",
    "CreateExtensionStmt": "CREATE EXTENSION",
    "CreateTrigStmt": "CREATE TRIGGER",
    "CreatePolicyStmt": "CREATE POLICY",
}


def _remember(stmt: Any, cs: ChangeSet) -> None:
    """Record what a CREATE makes (the same keys as ``risks.objects.created``)."""
    from patcher.sql.risks.objects import created
    from patcher.sql.risks.walk import Walk

    walk = Walk(None)
    created(walk, stmt)
    cs.created |= walk.created


def index(stmt: ast.IndexStmt, cs: ChangeSet) -> Verdict:
    table = Table.of(stmt.relation)
    if stmt.idxname and table is not None:
        cs.created.add(f"{table.schema or 'public'}.{stmt.idxname}")
    if stmt.unique and table is not None and not cs.made(table.key):
        if _index_on_new_columns(stmt, table, cs):
            return _expand(
                "CREATE UNIQUE INDEX on columns this change set adds",
                "the previous release never writes those columns (they stay NULL)",
            )
        return _contract(
            "CREATE UNIQUE INDEX",
            "a unique index on an existing table refuses the previous release's writes of "
            "duplicate values (and fails to build if some exist)",
            "add-unique",
        )
    return _expand("CREATE INDEX", "adds an index: queries only get faster")


def _index_on_new_columns(stmt: ast.IndexStmt, table: Table, cs: ChangeSet) -> bool:
    """Whether every key of the index is a plain column the change set added (no expression,
    no WHERE: a partial index's predicate may read old columns)."""
    names = [getattr(elem, "name", None) for elem in stmt.indexParams or ()]
    if not names or None in names or stmt.whereClause is not None:
        return False
    return all(cs.made(f"column:{table.key}.{name}") for name in names)


def drop(stmt: ast.DropStmt, cs: ChangeSet) -> Verdict:
    kind = enum_name(stmt.removeType)
    what = kind.removeprefix("OBJECT_").replace("_", " ")
    keys = [_drop_key(kind, names) for names in stmt.objects or ()]
    if keys and all(cs.made(*k) for k in keys):
        return _expand(f"DROP {what}", f"drops {_NEW}")
    if kind == "OBJECT_INDEX":
        return _contract(
            "DROP INDEX",
            "the previous release's INSERT ... ON CONFLICT may need this index if it is "
            "unique; offline it cannot be told whether it is (the catalog can)",
            catalog=True,
        )
    if kind in ("OBJECT_TRIGGER", "OBJECT_RULE"):
        reason = f"the previous release's writes rely on the {what.lower()}'s effect"
    else:
        reason = f"the previous release's queries that use the {what.lower()} fail"
    return _contract(f"DROP {what}", reason)


def _drop_key(kind: str, names: Any) -> tuple[str, ...]:
    key = key_of(kind, names)
    if kind in ("OBJECT_TRIGGER", "OBJECT_POLICY", "OBJECT_RULE"):
        return (key, key.partition(":")[2].rpartition(".")[0])  # or its table is new
    return (key,)


def rename(stmt: ast.RenameStmt, cs: ChangeSet) -> Verdict:
    kind = enum_name(stmt.renameType)
    table = Table.of(stmt.relation)
    what = kind.removeprefix("OBJECT_").replace("_", " ")
    if table is not None and cs.made(table.key):
        return _expand(f"RENAME {what}", f"renames {_NEW}")
    if kind == "OBJECT_COLUMN":
        key = f"column:{table.key}.{stmt.subname}" if table is not None else ""
        if cs.made(key):
            return _expand("RENAME COLUMN", f"renames {_NEW}")
        return _contract(
            "RENAME COLUMN",
            f"the previous release's queries name column {stmt.subname}, which no longer exists",
            "rename-column",
        )
    if kind in ("OBJECT_INDEX", "OBJECT_TRIGGER", "OBJECT_POLICY", "OBJECT_RULE"):
        return Verdict("neutral", f"RENAME {what}", "queries do not name it")
    if stmt.object is not None and cs.made(key_of(kind, stmt.object)):
        return _expand(f"RENAME {what}", f"renames {_NEW}")
    if kind == "OBJECT_SCHEMA" and cs.made(f"schema:{stmt.subname}"):
        return _expand("RENAME SCHEMA", f"renames {_NEW}")
    return _contract(
        f"RENAME {what}",
        f"the previous release's queries use the old name of the {what.lower()}",
    )


def set_schema(stmt: ast.AlterObjectSchemaStmt, cs: ChangeSet) -> Verdict:
    kind = enum_name(stmt.objectType)
    table = Table.of(stmt.relation)
    key = table.key if table is not None else key_of(kind, stmt.object or ())
    if cs.made(key):
        return _expand("ALTER ... SET SCHEMA", f"moves {_NEW}")
    return _contract(
        "ALTER ... SET SCHEMA",
        "the previous release's queries find it under its old schema (or through "
        "search_path), like a rename",
    )


def grant(stmt: ast.GrantStmt | ast.GrantRoleStmt, cs: ChangeSet) -> Verdict:
    if stmt.is_grant:
        return _expand("GRANT", "gives privileges: nothing that worked stops working")
    return _contract("REVOKE", "the previous release's role may need the privilege it takes")


def default_privileges(stmt: ast.AlterDefaultPrivilegesStmt, cs: ChangeSet) -> Verdict:
    if stmt.action is not None and not stmt.action.is_grant:
        return _contract(
            "ALTER DEFAULT PRIVILEGES ... REVOKE",
            "objects made later lack a privilege the previous release's role may need",
        )
    return _expand("ALTER DEFAULT PRIVILEGES ... GRANT", "gives privileges on future objects")


def alter_enum(stmt: ast.AlterEnumStmt, cs: ChangeSet) -> Verdict:
    if stmt.oldVal is not None and not cs.made("type:" + qualified(stmt.typeName)):
        return _contract(
            "ALTER TYPE ... RENAME VALUE",
            f"the previous release writes and compares the value '{stmt.oldVal}'",
        )
    return _expand("ALTER TYPE ... ADD VALUE", "adds a value; every old value stays")


def alter_domain(stmt: ast.AlterDomainStmt, cs: ChangeSet) -> Verdict:
    sub = stmt.subtype
    if cs.made("type:" + qualified(stmt.typeName)):
        return _expand("ALTER DOMAIN", f"changes {_NEW}")
    if sub in ("C", "O") or (sub == "T" and stmt.def_ is None):  # ADD CONSTRAINT, SET NOT NULL
        which = "ADD CONSTRAINT / SET NOT NULL" if sub != "T" else "DROP DEFAULT"
        return _contract(
            f"ALTER DOMAIN ... {which}",
            "writes of the previous release that the domain accepted may now fail",
        )
    return _expand("ALTER DOMAIN", "loosens the domain or sets a default")


def do_block(stmt: Any, cs: ChangeSet) -> Verdict:
    return _contract(
        "DO / CALL",
        "its body is not classified (it may run any statement): it is taken to break the "
        "previous release; split it, or waive it with a reason "
        "(-- patcher:ignore BREAKS_PREVIOUS_RELEASE why)",
    )


def create_rule(stmt: Any, cs: ChangeSet) -> Verdict:
    table = Table.of(stmt.relation)
    if table is not None and cs.made(table.key):
        return _expand("CREATE RULE", f"on {_NEW}")
    return _contract("CREATE RULE", "a rule rewrites what the previous release's queries do")


def neutral(kind: str, reason: str) -> Verdict:
    return Verdict("neutral", kind, reason)


_MAINTENANCE = "maintenance or session state: no query or write changes meaning"
RULES: Final[dict[str, Any]] = {
    "CreateStmt": create_table,
    "CreateTableAsStmt": create_table,
    "ViewStmt": create_view,
    "IndexStmt": index,
    "DropStmt": drop,
    "RenameStmt": rename,
    "AlterObjectSchemaStmt": set_schema,
    "GrantStmt": grant,
    "GrantRoleStmt": grant,
    "AlterDefaultPrivilegesStmt": default_privileges,
    "AlterEnumStmt": alter_enum,
    "AlterDomainStmt": alter_domain,
    "AlterTableStmt": alter_table,
    "DoStmt": do_block,
    "CallStmt": do_block,
    "RuleStmt": create_rule,
    **dict.fromkeys(
        (
            "CreateSeqStmt",
            "CreateEnumStmt",
            "CreateRangeStmt",
            "CompositeTypeStmt",
            "CreateDomainStmt",
            "CreateFunctionStmt",
            "CreateSchemaStmt",
            "CreateExtensionStmt",
            "CreateTrigStmt",
            "CreatePolicyStmt",
        ),
        create_object,
    ),
}
_NEUTRAL_KINDS: Final = {
    "AlterOwnerStmt": "ALTER ... OWNER TO",
    "AlterSeqStmt": "ALTER SEQUENCE",
    "AlterFunctionStmt": "ALTER FUNCTION (volatility, cost, settings)",
    "AlterStatsStmt": "ALTER STATISTICS",
    "AlterTableSpaceOptionsStmt": "ALTER TABLESPACE",
    "AlterExtensionStmt": "ALTER EXTENSION ... UPDATE",
    "AlterRoleStmt": "ALTER ROLE",
    "AlterRoleSetStmt": "ALTER ROLE ... SET",
    "AlterDatabaseSetStmt": "ALTER DATABASE ... SET",
    "AlterCollationStmt": "ALTER COLLATION ... REFRESH VERSION",
}


def quick_verdict(node: dict[str, Any], cs: ChangeSet) -> Verdict | None:
    """The verdict of a CREATE TABLE or CREATE INDEX from pglast's JSON parse (the common
    statements, without building node objects); None for anything else."""
    if "CreateStmt" in node:
        create = node["CreateStmt"]
        rel = create.get("relation") or {}
        if create.get("partbound") is not None or create.get("ofTypename") is not None:
            return None  # PARTITION OF / OF type: the full rules
        cs.created.add(f"{rel.get('schemaname') or 'public'}.{rel.get('relname')}")
        return _expand("CREATE TABLE", "adds a table the previous release does not know about")
    if "IndexStmt" in node:
        index_node = node["IndexStmt"]
        rel = index_node.get("relation") or {}
        schema = rel.get("schemaname") or "public"
        if index_node.get("idxname"):
            cs.created.add(f"{schema}.{index_node['idxname']}")
        if index_node.get("unique") and not cs.made(f"{schema}.{rel.get('relname')}"):
            return None  # the full rules: it may be on columns the change set adds
        return _expand("CREATE INDEX", "adds an index: queries only get faster")
    return None


def verdict(stmt: Any, cs: ChangeSet) -> Verdict:
    """The verdict of one parsed statement; ``cs`` learns what it creates."""
    name = type(stmt).__name__
    rule = RULES.get(name)
    if rule is not None:
        return rule(stmt, cs)  # type: ignore[no-any-return]
    if name in _NEUTRAL_KINDS:
        return neutral(_NEUTRAL_KINDS[name], _MAINTENANCE)
    if name.startswith(("Create", "Define")):
        return _expand(name.removesuffix("Stmt"), "creates an object the previous release lacks")
    if name.startswith(("Alter", "Drop")):
        return _contract(
            name.removesuffix("Stmt"),
            "changes or removes an existing object in a way not classified in detail: taken "
            "to break the previous release",
        )
    return neutral(name.removesuffix("Stmt"), _MAINTENANCE)
