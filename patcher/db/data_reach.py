"""Which tables a dropping or deleting statement reaches beyond the one it names: inheritance
children, materialised views and foreign keys, read from the catalog (for
``patcher.db.data_counts``; ``verify`` needs none of it: it sees what really went).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from patcher.core.data_loss import DROP, TRUNCATE, Probe


@dataclass(frozen=True)
class ForeignKey:
    """A referencing table (``schema.table``), its key columns and the ones they reference."""

    table: str
    columns: tuple[str, ...]
    referenced: tuple[str, ...]


def reached(conn: psycopg.Connection[Any], oid: int, probe: Probe) -> list[tuple[int, str]]:
    """Tables that go with a dropped or truncated one: inheritance children (a DROP needs
    CASCADE for them, a TRUNCATE takes them unless ONLY), and with CASCADE the tables whose
    foreign keys reference it (TRUNCATE) or the materialised views built on it (DROP)."""
    if probe.change == DROP and not probe.cascade:
        return []
    cascade_fk = probe.change == TRUNCATE and probe.cascade
    cascade_mv = probe.change == DROP
    rows = conn.execute(
        """
        WITH RECURSIVE reached(oid) AS (
            SELECT %(oid)s::oid
            UNION
            SELECT d.rel FROM reached r, LATERAL (
                SELECT i.inhrelid AS rel FROM pg_inherits i
                 WHERE %(inh)s AND i.inhparent = r.oid
                UNION ALL
                SELECT f.conrelid FROM pg_constraint f
                 WHERE %(fk)s AND f.contype = 'f' AND f.confrelid = r.oid
                UNION ALL
                SELECT w.ev_class FROM pg_depend d2 JOIN pg_rewrite w ON w.oid = d2.objid
                 WHERE %(mv)s AND d2.classid = 'pg_rewrite'::regclass
                   AND d2.refobjid = r.oid AND w.ev_class <> r.oid
            ) d
        )
        SELECT c.oid::bigint, n.nspname || '.' || c.relname FROM reached r
          JOIN pg_class c ON c.oid = r.oid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid <> %(oid)s::oid AND c.relkind IN ('r', 'm') AND NOT c.relispartition
         ORDER BY 2
        """,
        {"oid": oid, "fk": cascade_fk, "mv": cascade_mv, "inh": not probe.only},
    ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def cascading_keys(conn: psycopg.Connection[Any], oid: int) -> list[ForeignKey]:
    """The foreign keys referencing table ``oid`` with ON DELETE CASCADE."""
    rows = conn.execute(
        """
        SELECT n.nspname || '.' || c.relname,
               array(SELECT a.attname::text FROM unnest(f.conkey) WITH ORDINALITY k(num, i)
                       JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.num
                      ORDER BY k.i),
               array(SELECT a.attname::text FROM unnest(f.confkey) WITH ORDINALITY k(num, i)
                       JOIN pg_attribute a ON a.attrelid = f.confrelid AND a.attnum = k.num
                      ORDER BY k.i)
          FROM pg_constraint f JOIN pg_class c ON c.oid = f.conrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE f.contype = 'f' AND f.confrelid = %s AND f.confdeltype = 'c'
         ORDER BY 1
        """,
        (oid,),
    ).fetchall()
    return [ForeignKey(str(t), tuple(cols), tuple(refs)) for t, cols, refs in rows]
