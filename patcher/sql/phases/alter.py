"""ALTER TABLE for the expand/contract classification: one verdict per subcommand, and the
statement's verdict is its most breaking subcommand's (contract > expand > neutral)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from patcher.sql.phases.model import ChangeSet, Verdict
from patcher.sql.risks.walk import Table, enum_name

if TYPE_CHECKING:
    from pglast import ast

_RANK: Final = {"neutral": 0, "expand": 1, "contract": 2}
_NEUTRAL_SUBCOMMANDS: Final = frozenset({
    "AT_SetStatistics", "AT_SetOptions", "AT_ResetOptions", "AT_SetStorage", "AT_SetCompression",
    "AT_ClusterOn", "AT_DropCluster", "AT_SetLogged", "AT_SetUnLogged", "AT_SetTableSpace",
    "AT_SetRelOptions", "AT_ResetRelOptions", "AT_ReplaceRelOptions", "AT_ChangeOwner",
    "AT_EnableTrig", "AT_EnableAlwaysTrig", "AT_EnableReplicaTrig", "AT_DisableTrig",
    "AT_EnableTrigAll", "AT_DisableTrigAll", "AT_EnableTrigUser", "AT_DisableTrigUser",
    "AT_ReplicaIdentity", "AT_ValidateConstraint", "AT_SetAccessMethod", "AT_AddInherit",
    "AT_DropInherit", "AT_AttachPartition", "AT_EnableRule", "AT_DisableRule",
    "AT_GenericOptions", "AT_SetExpression",
})  # fmt: skip
_EXPAND_SUBCOMMANDS: Final = {
    "AT_DropNotNull": "loosens: NULL is accepted where it was not",
    "AT_DropConstraint": "loosens: writes the constraint refused are accepted",
    "AT_DisableRowSecurity": "loosens: every row is visible again to the roles that had access",
    "AT_NoForceRowSecurity": "loosens: the owner sees every row again",
    "AT_AddIdentity": "gives the column a default",
    "AT_SetIdentity": "changes how identity values are made; inserts still get one",
    "AT_DropExpression": "the column keeps its values and now also accepts writes",
}
# Type changes that old queries and writes still accept even though the storage changes.
_WIDENINGS: Final = {
    ("int2", "int4"), ("int2", "int8"), ("int4", "int8"), ("float4", "float8"),
    ("int2", "numeric"), ("int4", "numeric"), ("int8", "numeric"), ("varchar", "text"),
    ("bpchar", "text"), ("bpchar", "varchar"),
}  # fmt: skip
_OIDS: Final = {21: "int2", 23: "int4", 20: "int8", 700: "float4", 701: "float8",
                1700: "numeric", 1043: "varchar", 25: "text", 1042: "bpchar"}  # fmt: skip


def alter_table(stmt: ast.AlterTableStmt, cs: ChangeSet) -> Verdict:
    table = Table.of(stmt.relation)
    fresh = table is not None and cs.made(table.key)
    found: list[Verdict] = []
    for cmd in stmt.cmds or ():
        one = _subcommand(cmd, table, cs)
        if fresh and one.phase == "contract":
            one = Verdict("expand", one.kind, "changes a table this change set creates")
        found.append(one)
    if not found:
        return Verdict("neutral", "ALTER TABLE", "no subcommand")
    return max(found, key=lambda v: _RANK[v.phase])


def _subcommand(cmd: ast.AlterTableCmd, table: Table | None, cs: ChangeSet) -> Verdict:
    kind = enum_name(cmd.subtype)
    column = f"column:{table.key}.{cmd.name}" if table is not None and cmd.name else ""
    own = bool(column) and cs.made(column)  # a column this change set added
    if kind == "AT_AddColumn":
        return _add_column(cmd.def_, table, cs)
    if kind in _NEUTRAL_SUBCOMMANDS:
        return Verdict("neutral", _label(kind), "storage, ownership, triggers or maintenance")
    if kind in _EXPAND_SUBCOMMANDS:
        return Verdict("expand", _label(kind), _EXPAND_SUBCOMMANDS[kind])
    if own:
        return Verdict("expand", _label(kind), "changes a column this change set adds")
    if kind == "AT_DropColumn":
        return Verdict(
            "contract", "ALTER TABLE ... DROP COLUMN",
            f"the previous release's queries and inserts that name {cmd.name} fail",
        )  # fmt: skip
    if kind == "AT_SetNotNull":
        return Verdict(
            "contract", "ALTER TABLE ... SET NOT NULL",
            f"the previous release's writes that leave {cmd.name} NULL are refused",
            "set-not-null",
        )  # fmt: skip
    if kind == "AT_ColumnDefault":
        if cmd.def_ is not None:
            return Verdict("expand", "ALTER COLUMN ... SET DEFAULT", "inserts keep working")
        return Verdict(
            "contract", "ALTER COLUMN ... DROP DEFAULT",
            f"the previous release's inserts that omit {cmd.name} relied on the default",
        )  # fmt: skip
    if kind == "AT_AlterColumnType":
        return _type_change(cmd, table, cs)
    if kind in ("AT_AddConstraint", "AT_AddIndexConstraint", "AT_AddIndex"):
        if table is not None and _on_new_columns(cmd.def_, table, cs):
            return Verdict(
                "expand", "ADD CONSTRAINT on columns this change set adds",
                "the previous release never writes those columns (they stay NULL or default)",
            )  # fmt: skip
        return _constraint(cmd.def_)
    if kind in ("AT_EnableRowSecurity", "AT_ForceRowSecurity"):
        return Verdict(
            "contract", "ALTER TABLE ... ENABLE ROW LEVEL SECURITY",
            "with no policy for the previous release's role, its queries see no rows and its "
            "writes are refused",
        )  # fmt: skip
    if kind == "AT_DropIdentity":
        return Verdict(
            "contract", "ALTER COLUMN ... DROP IDENTITY",
            "the previous release's inserts that omit the column relied on its identity",
        )  # fmt: skip
    if kind == "AT_DetachPartition":
        return Verdict(
            "contract", "ALTER TABLE ... DETACH PARTITION",
            "the partition's rows leave the previous release's queries of the parent",
        )  # fmt: skip
    return Verdict(
        "contract", _label(kind),
        "an ALTER TABLE subcommand not classified in detail: taken to break the previous "
        "release",
    )  # fmt: skip


def _label(kind: str) -> str:
    return "ALTER TABLE ... " + kind.removeprefix("AT_")


def _add_column(col: Any, table: Table | None, cs: ChangeSet) -> Verdict:
    if table is not None and col is not None and col.colname:
        cs.created.add(f"column:{table.key}.{col.colname}")
    constraints = [enum_name(c.contype) for c in getattr(col, "constraints", None) or ()]
    not_null = {"CONSTR_NOTNULL", "CONSTR_PRIMARY"} & set(constraints)
    filled = {"CONSTR_IDENTITY", "CONSTR_GENERATED"} & set(constraints)
    if any(_real_default(c) for c in getattr(col, "constraints", None) or ()):
        filled.add("CONSTR_DEFAULT")
    serial = col is not None and col.typeName is not None and _serial(col.typeName)
    if not_null and not filled and not serial:
        return Verdict(
            "contract", "ADD COLUMN ... NOT NULL without a default",
            "the previous release's inserts do not name the new column, so they are refused",
            "set-not-null",
        )  # fmt: skip
    if "CONSTR_UNIQUE" in constraints and filled:
        return Verdict(
            "contract", "ADD COLUMN ... UNIQUE DEFAULT",
            "every insert of the previous release writes the same default into a unique column",
            "add-unique",
        )  # fmt: skip
    return Verdict(
        "expand", "ADD COLUMN (nullable, or with a default)",
        "the previous release neither reads nor writes it; its inserts get NULL or the default",
    )  # fmt: skip


def _real_default(con: Any) -> bool:
    """A DEFAULT other than ``DEFAULT NULL``."""
    from pglast import ast as a

    if enum_name(con.contype) != "CONSTR_DEFAULT":
        return False
    expr = con.raw_expr
    return not (isinstance(expr, a.A_Const) and expr.isnull)


def _serial(type_name: Any) -> bool:
    return type_name.names[-1].sval in {"serial", "serial4", "serial8", "bigserial", "smallserial"}


_CONSTRAINTS: Final = {
    "CONSTR_CHECK": ("CHECK", "add-check"),
    "CONSTR_UNIQUE": ("UNIQUE", "add-unique"),
    "CONSTR_FOREIGN": ("FOREIGN KEY", "add-foreign-key"),
    "CONSTR_EXCLUSION": ("EXCLUDE", None),
    "CONSTR_PRIMARY": ("PRIMARY KEY", "add-unique"),
    "CONSTR_NOTNULL": ("NOT NULL", "set-not-null"),
}


def _constraint(con: Any) -> Verdict:
    contype = enum_name(getattr(con, "contype", None))
    what, recipe = _CONSTRAINTS.get(contype, ("a constraint", None))
    later = (
        " (NOT VALID checks new writes all the same)" if getattr(con, "skip_validation", 0) else ""
    )
    return Verdict(
        "contract", f"ADD CONSTRAINT ... {what}",
        f"the previous release's new writes may violate it{later}",
        recipe,
    )  # fmt: skip


def _type_change(cmd: Any, table: Table | None, cs: ChangeSet) -> Verdict:
    """Contract, even when the catalog shows a no-op conversion or a widening: the previous
    release's prepared queries that return the column fail ("cached plan must not change result
    type"; psycopg, JDBC, pgx and asyncpg prepare by default), as the two-release harness shows."""
    why = f"the previous release reads and writes {cmd.name} as its old type"
    catalog = cs.catalog
    if catalog is not None and table is not None and cmd.def_ is not None:
        from patcher.sql.risks import rewrites
        from patcher.sql.risks.walk import Walk

        walk = Walk(None, catalog=catalog)
        kind = (
            "no-op conversion"
            if rewrites.type_change(walk, table, cmd.name, cmd.def_) is False
            else ""
        )
        current = catalog.column_type(table.key, cmd.name)
        target = walk.column_types.get((table.key, cmd.name))
        if not kind and current is not None and target is not None:
            pair = (_OIDS.get(current[0], "?"), _OIDS.get(target[0], "?"))
            kind = "widening" if pair in _WIDENINGS and target[1] == -1 else ""
        if kind and cmd.def_.raw_default is None:
            why = (
                f"even as a {kind}, the new type changes the result type the previous "
                "release's prepared queries were planned with: they fail with \"cached plan "
                'must not change result type"'
            )
    return Verdict("contract", "ALTER COLUMN ... TYPE", why, "change-type")


def _on_new_columns(con: Any, table: Table, cs: ChangeSet) -> bool:
    """Whether a constraint reads only columns the change set added (a CHECK that tests
    for NULL excepted: the previous release leaves them NULL)."""
    from pglast import ast as a
    from pglast.visitors import Visitor

    if con is None or isinstance(con, a.Constraint) is False:
        return False
    names = [n.sval for n in (con.keys or ()) + (con.fk_attrs or ()) + (con.including or ())]
    if con.raw_expr is not None:

        class _Refs(Visitor):
            def visit_ColumnRef(self, _ancestors: Any, node: Any) -> None:
                names.append(getattr(node.fields[-1], "sval", ""))

            def visit_NullTest(self, _ancestors: Any, _node: Any) -> None:
                names.append("")  # IS [NOT] NULL: never "new columns only"

        _Refs()(con.raw_expr)
    return bool(names) and all(cs.made(f"column:{table.key}.{n}") for n in names)
