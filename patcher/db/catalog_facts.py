"""The catalog facts a dry run decides rewrites from (``patcher.sql.risks.rewrites.Catalog``).

Each answer is one small query on the run's connection, cached for the preview: a column's
current type and typmod (``pg_attribute``), a type name's oid (``to_regtype``), how one type
casts to another (``pg_cast.castmethod``), a function's volatility (``pg_proc.provolatile``)
and the session's TimeZone. Only read; nothing is locked beyond what a catalog read takes.
"""

from __future__ import annotations

import functools
from typing import Any

import psycopg

_COLUMN = (
    "SELECT a.atttypid::int, a.atttypmod FROM pg_attribute a "
    "WHERE a.attrelid = to_regclass(%s) AND a.attname = %s AND a.attnum > 0 "
    "AND NOT a.attisdropped"
)
_CAST = "SELECT castmethod::text FROM pg_cast WHERE castsource = %s AND casttarget = %s"
# The strongest volatility among functions of that name on the search_path or qualified.
_VOLATILITY = (
    "SELECT max(CASE provolatile WHEN 'v' THEN 3 WHEN 's' THEN 2 ELSE 1 END) FROM pg_proc "
    "WHERE proname = %s"
)
_LEVELS = {3: "v", 2: "s", 1: "i"}
_QUALIFIED = (
    "(SELECT qn.nspname || '.' || qc.relname FROM pg_class qc JOIN pg_namespace qn "
    "ON qn.oid = qc.relnamespace WHERE qc.oid = {})"
)
_FOREIGN_KEYS = (
    f"SELECT conname::text, {_QUALIFIED.format('confrelid')} FROM pg_constraint "
    "WHERE contype = 'f' AND conrelid = to_regclass(%s) ORDER BY conname"
)
_DOMAIN = (
    "SELECT typbasetype::int, typtypmod, EXISTS (SELECT 1 FROM pg_constraint "
    "WHERE contypid = t.oid) FROM pg_type t WHERE t.oid = %s AND t.typtype = 'd'"
)
_INDEX_TABLE = (
    f"SELECT {_QUALIFIED.format('indrelid')} FROM pg_index WHERE indexrelid = to_regclass(%s)"
)
# Tables at the other end of a foreign key that has the column on either side.
_COLUMN_LINKS = (
    "SELECT DISTINCT CASE WHEN c.conrelid = r.oid THEN {} ELSE {} END FROM pg_constraint c "
    "JOIN (SELECT to_regclass(%s) AS oid) r ON r.oid IN (c.conrelid, c.confrelid) "
    "JOIN pg_attribute a ON a.attrelid = r.oid AND a.attname = %s "
    "WHERE c.contype = 'f' AND ((c.conrelid = r.oid AND a.attnum = ANY (c.conkey)) "
    "OR (c.confrelid = r.oid AND a.attnum = ANY (c.confkey)))"
).format(_QUALIFIED.format("c.confrelid"), _QUALIFIED.format("c.conrelid"))
_REFERENCING = (
    f"SELECT DISTINCT {_QUALIFIED.format('conrelid')} FROM pg_constraint "
    "WHERE contype = 'f' AND confrelid = to_regclass(%s) ORDER BY 1"
)

# What DROP ... CASCADE drops with an object: its dependents (normal, auto and internal
# dependencies, a column's only when that column goes), and the owner of any internal part
# (a view's rewrite rule takes the view along); then the relation each of those is on.
_CASCADE = """
WITH RECURSIVE gone(classid, objid, objsubid) AS (
    SELECT %s::regclass::oid, %s::oid, 0
  UNION
    SELECT CASE WHEN inward THEN d.classid ELSE d.refclassid END,
           CASE WHEN inward THEN d.objid ELSE d.refobjid END,
           CASE WHEN inward THEN d.objsubid ELSE 0 END
      FROM gone g JOIN LATERAL (
        SELECT dd.*, true AS inward FROM pg_depend dd
         WHERE dd.refclassid = g.classid AND dd.refobjid = g.objid
           AND (g.objsubid = 0 OR dd.refobjsubid = g.objsubid) AND dd.deptype IN ('n', 'a', 'i')
        UNION ALL
        SELECT dd.*, false FROM pg_depend dd
         WHERE dd.classid = g.classid AND dd.objid = g.objid AND dd.deptype = 'i'
      ) d ON true
)
SELECT DISTINCT n.nspname || '.' || c.relname
  FROM gone g
  JOIN LATERAL (
    SELECT g.objid AS rel WHERE g.classid = 'pg_class'::regclass
    UNION ALL SELECT indrelid FROM pg_index
     WHERE g.classid = 'pg_class'::regclass AND indexrelid = g.objid
    UNION ALL SELECT tgrelid FROM pg_trigger
     WHERE g.classid = 'pg_trigger'::regclass AND oid = g.objid
    UNION ALL SELECT ev_class FROM pg_rewrite
     WHERE g.classid = 'pg_rewrite'::regclass AND oid = g.objid
    UNION ALL SELECT adrelid FROM pg_attrdef
     WHERE g.classid = 'pg_attrdef'::regclass AND oid = g.objid
    UNION ALL SELECT unnest(ARRAY[conrelid, confrelid]) FROM pg_constraint
     WHERE g.classid = 'pg_constraint'::regclass AND oid = g.objid
    UNION ALL SELECT polrelid FROM pg_policy
     WHERE g.classid = 'pg_policy'::regclass AND oid = g.objid
  ) r ON true
  JOIN pg_class c ON c.oid = r.rel AND c.relkind IN ('r', 'p', 'm')
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE NOT (g.classid = %s::regclass::oid AND g.objid = %s::oid)
 ORDER BY 1
"""


class CatalogFacts:
    """``Catalog`` on a live connection; every answer cached for the lifetime of the object."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def _one(self, query: str, params: tuple[object, ...]) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.conn.execute(query, params).fetchone()
        return row

    @functools.cache  # noqa: B019 (one preview's lifetime, by design)
    def column_type(self, table: str, column: str) -> tuple[int, int] | None:
        row = self._one(_COLUMN, (_quoted(table), column))
        return (int(row[0]), int(row[1])) if row else None

    @functools.cache  # noqa: B019
    def type_oid(self, name: str) -> int | None:
        row = self._one("SELECT to_regtype(%s)::oid::int", (name,))
        return int(row[0]) if row and row[0] is not None else None

    @functools.cache  # noqa: B019
    def cast_method(self, source: int, target: int) -> str | None:
        row = self._one(_CAST, (source, target))
        return str(row[0]) if row else None

    @functools.cache  # noqa: B019
    def volatility(self, function: str) -> str | None:
        row = self._one(_VOLATILITY, (function,))
        return _LEVELS.get(row[0]) if row and row[0] is not None else None

    @functools.cache  # noqa: B019
    def domain(self, oid: int) -> tuple[int, int, bool] | None:
        row = self._one(_DOMAIN, (oid,))
        return (int(row[0]), int(row[1]), bool(row[2])) if row else None

    @functools.cache  # noqa: B019
    def index_table(self, index: str) -> str | None:
        row = self._one(_INDEX_TABLE, (_quoted(index),))
        return str(row[0]) if row and row[0] is not None else None

    @functools.cache  # noqa: B019
    def column_links(self, table: str, column: str) -> list[str]:
        rows = self.conn.execute(_COLUMN_LINKS, (_quoted(table), column)).fetchall()
        return sorted(str(row[0]) for row in rows)

    @functools.cache  # noqa: B019
    def foreign_keys(self, table: str) -> list[tuple[str, str]]:
        rows = self.conn.execute(_FOREIGN_KEYS, (_quoted(table),)).fetchall()
        return [(str(name), str(referenced)) for name, referenced in rows]

    @functools.cache  # noqa: B019
    def referencing(self, table: str) -> list[str]:
        rows = self.conn.execute(_REFERENCING, (_quoted(table),)).fetchall()
        return [str(row[0]) for row in rows]

    @functools.cache  # noqa: B019
    def cascade_reach(self, kind: str, name: str) -> list[str]:
        if kind == "function":
            resolve = "to_regprocedure(%s)" if name.endswith(")") else "to_regproc(%s)"
            catalog, wanted = "pg_proc", name
        else:
            resolve, catalog, wanted = "to_regclass(%s)", "pg_class", _quoted(name)
        row = self._one(f"SELECT {resolve}::oid::int", (wanted,))
        if not row or row[0] is None:
            return []  # not there (made by the script), or an overloaded name: nothing known
        oid = int(row[0])
        rows = self.conn.execute(_CASCADE, (catalog, oid, catalog, oid)).fetchall()
        return [str(r[0]) for r in rows]

    @functools.cache  # noqa: B019
    def timezone(self) -> str:
        row = self._one("SELECT current_setting('TimeZone')", ())
        return str(row[0]) if row else ""


def _quoted(table: str) -> str:
    """``schema.name`` as to_regclass reads it exactly (quoted: no case folding)."""
    parts = table.rpartition(".")[::2] if "." in table else (table,)
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)
