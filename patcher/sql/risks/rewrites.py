"""Does it rewrite the table? ALTER COLUMN TYPE and ADD COLUMN ... DEFAULT, decided from facts.

PostgreSQL (``ATColumnChangeRequiresRewrite``, ``ATExecAddColumn``) skips the rewrite of an
ALTER COLUMN TYPE when the conversion of the old value is a no-op: the same type with a typmod
that only relaxes (a longer or unlimited varchar, a greater timestamp precision), or a
binary-coercible cast (``pg_cast.castmethod = 'b'``) into a type without a length to enforce,
or timestamp -> timestamptz while the session's TimeZone is UTC (PostgreSQL 12+). A USING
that is just the column (or the column cast to the new type) counts as no USING; any other
USING is computed per row. ADD COLUMN rewrites when its default is volatile (``pg_proc``).

The facts come from ``Catalog`` (``patcher.core.catalog_port``, answered in a dry run by
``patcher.db.catalog_facts``); each answer is True (rewrites), False (does not) or None (cannot
tell: an object this script made, a type the catalog does not know), and the caller falls back
to what the SQL alone says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from patcher.core.catalog_port import Catalog

if TYPE_CHECKING:
    from patcher.sql.risks.walk import Table, Walk

# Type OIDs (pg_type.dat) whose typmod PostgreSQL relaxes without a rewrite.
_LENGTH_TYPES: Final = {1043: "varchar", 1042: "bpchar", 1560: "bit", 1562: "varbit"}
_PRECISION_TYPES: Final = {1114, 1184, 1083, 1266, 1186}  # timestamp(tz), time(tz), interval
_NUMERIC: Final = 1700
_TIMESTAMP, _TIMESTAMPTZ = 1114, 1184


def type_change(walk: Walk, table: Table, column: str | None, col: Any) -> bool | None:
    """Whether ALTER COLUMN ``column`` TYPE (``col``: its ColumnDef) rewrites ``table``."""
    catalog = walk.catalog
    if catalog is None or column is None or col.typeName is None:
        return None
    if col.raw_default is not None and not _plain_using(col.raw_default, column):
        return True
    key = walk.column_before(table, column)
    current = walk.column_types.get(key) or catalog.column_type(*key)
    target = _type_oid(catalog, col.typeName)
    new_mod = _typmod(target, col.typeName) if target is not None else None
    if current is None or target is None or new_mod is None:
        walk.column_types.pop(key, None)  # unknown from here on
        return None
    old_type, old_mod = current
    domain = catalog.domain(target)
    walk.column_types[key] = (target, -1 if domain is not None else new_mod)  # for later ALTERs
    if domain is not None:  # CoerceToDomain: a check per row when it has constraints
        if domain[2]:
            return True
        target, new_mod = domain[0], domain[1]
    old_domain = catalog.domain(old_type)
    if old_domain is not None:  # its values are the base type's, but the column's typmod is
        old_type = old_domain[0]  # -1: PostgreSQL checks every value against a new length
    if old_type == target:
        return not _relaxes(target, old_mod, new_mod)
    if {old_type, target} == {_TIMESTAMP, _TIMESTAMPTZ}:
        zone = walk.settings.get("timezone") or catalog.timezone()
        return zone.upper() not in ("UTC", "ETC/UTC", "UCT", "ZULU", "GMT", "ETC/GMT")
    if catalog.cast_method(old_type, target) != "b":
        return True
    return new_mod != -1 and (target in _LENGTH_TYPES or target == _NUMERIC)  # a limit to check


def volatile_default(walk: Walk, functions: list[str]) -> bool | None:
    """Whether a DEFAULT calling ``functions`` is volatile (computed per row: a rewrite)."""
    answers = []
    for name in functions:
        known = walk.functions.get(name)  # made earlier in this script or change set
        if known is None and walk.catalog is not None:
            known = walk.catalog.volatility(name)
        answers.append(known)
    if "v" in answers:
        return True
    return None if None in answers else False


def _plain_using(node: Any, column: str) -> bool:
    """USING col, or USING col::newtype: the conversion PostgreSQL would do anyway."""
    from pglast import ast

    expr: Any = node.arg if isinstance(node, ast.TypeCast) else node
    fields: Any = expr.fields if isinstance(expr, ast.ColumnRef) else ()
    return len(fields or ()) == 1 and getattr(fields[0], "sval", None) == column


def _type_oid(catalog: Catalog, type_name: Any) -> int | None:
    names = [part.sval for part in type_name.names]
    spelled = ".".join(names) + ("[]" if type_name.arrayBounds else "")
    return catalog.type_oid(spelled)


def _typmod(oid: int, type_name: Any) -> int | None:
    """The typmod a type name's modifiers make (-1: none; None: not one we can compute)."""
    raw: list[Any] = [
        getattr(getattr(m, "val", None), "ival", None) for m in type_name.typmods or ()
    ]
    if not raw:
        return -1
    if None in raw:
        return None
    mods = [int(m) for m in raw]
    if oid in (1043, 1042):
        return mods[0] + 4  # VARHDRSZ
    if oid in (1560, 1562) or (oid in _PRECISION_TYPES and oid != 1186):
        return mods[0]
    if oid == _NUMERIC:
        precision, scale = mods[0], mods[1] if len(mods) > 1 else 0
        return ((precision << 16) | (scale & 0x7FF)) + 4
    return None


def _relaxes(oid: int, old: int, new: int) -> bool:
    """Same type, typmod old -> new: True when no stored value can need changing."""
    if new == old or new == -1:
        return True
    if old == -1:
        return False  # a limit where there was none: every value is checked
    if oid in (1043, 1560, 1562) or oid in _PRECISION_TYPES:
        return new > old
    if oid == _NUMERIC:
        return (new - 4) & 0xFFFF == (old - 4) & 0xFFFF and (new - 4) >> 16 >= (old - 4) >> 16
    return False  # bpchar pads: a new length rewrites
