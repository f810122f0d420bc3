"""How much data a rollback would destroy, counted in the live database (SPEC section 4,
``data_at_risk``).

``estimate`` counts each probe of ``patcher.sql.at_risk`` with ``count(*)`` under a short
statement_timeout (and lock_timeout), each in its own read-only transaction, and falls back to
the planner's statistics (``reltuples``, ``pg_stats.null_frac``, EXPLAIN's row estimate) marked
``estimated`` when the count is cut or the budget is spent. ``measure`` (in ``data_measure``)
runs the scripts themselves in a transaction that is always rolled back.

"Written since": a row whose ``xmin`` is younger than the history row of the version (written
in the same transaction as the migration) was inserted or last updated after that version was
applied; ``since`` is the SQL of that test, comparing ages within one statement.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from patcher.sql.at_risk import ALTER_TYPE, DELETE, DROP, TRUNCATE, UPDATE, Loss, Probe


@dataclass(frozen=True)
class Since:
    """Which history row dates the rows: ``schema.table`` of the history, and the version."""

    history: tuple[str, str]
    version: int

    def test(self, alias: str) -> sql.Composable:
        """SQL true for a row of ``alias`` written after the version's transaction."""
        return sql.SQL(
            "age({a}.xmin) < (SELECT age(h.xmin) FROM {h} h WHERE h.version = {v})"
        ).format(
            a=sql.Identifier(alias), h=sql.Identifier(*self.history), v=sql.Literal(self.version)
        )


@dataclass
class Budget:
    """Milliseconds each count may take, and in all: past the total, statistics only."""

    per_count_ms: int
    total_ms: int
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = time.perf_counter()

    def left_ms(self) -> int:
        spent = int((time.perf_counter() - self.started) * 1000)
        return min(self.per_count_ms, self.total_ms - spent)


def estimate(
    conn: psycopg.Connection[Any], found: Sequence[Probe], since: Since | None, budget: Budget
) -> list[Loss]:
    """Every probe counted (or estimated), plus the tables a CASCADE or inheritance reaches."""
    losses: list[Loss] = []
    for probe in found:
        rel = _relation(conn, probe.key)
        if rel is None:
            continue  # gone already (IF EXISTS), or not a table: nothing to count
        oid, name = rel
        if probe.change in (DROP, TRUNCATE):
            for child_oid, child in [(oid, name), *_reached(conn, oid, probe)]:
                losses.append(_rows(conn, child_oid, child, probe.change, since, budget))
        elif probe.change in (DELETE, UPDATE):
            losses.append(_matching(conn, probe, name, since, budget))
        elif probe.column is not None and _has_column(conn, oid, probe.column):
            losses.append(_values(conn, probe, oid, name, since, budget))
    return losses


def _relation(conn: psycopg.Connection[Any], key: str) -> tuple[int, str] | None:
    schema, _, table = key.partition(".")
    row = conn.execute(
        "SELECT c.oid::bigint, n.nspname || '.' || c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s "
        "AND c.relkind IN ('r', 'p', 'm')",
        (schema, table),
    ).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def _reached(conn: psycopg.Connection[Any], oid: int, probe: Probe) -> list[tuple[int, str]]:
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
                SELECT i.inhrelid AS rel FROM pg_inherits i WHERE i.inhparent = r.oid
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
        {"oid": oid, "fk": cascade_fk, "mv": cascade_mv},
    ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def _has_column(conn: psycopg.Connection[Any], oid: int, column: str) -> bool:
    return bool(
        conn.execute(
            "SELECT 1 FROM pg_attribute WHERE attrelid = %s AND attname = %s AND attnum > 0 "
            "AND NOT attisdropped",
            (oid, column),
        ).fetchone()
    )


def _target(name: str, alias: str = "t") -> sql.Composable:
    schema, _, table = name.partition(".")
    return sql.SQL("{} {}").format(sql.Identifier(schema, table), sql.Identifier(alias))


def _counted(
    conn: psycopg.Connection[Any], query: sql.Composed, budget: Budget
) -> tuple[int, int | None] | None:
    """(count, count written since) from ``query``, or None when cut by the budget; any other
    error of the query (a cast that fails on a value) is raised."""
    left = budget.left_ms()
    if left <= 0:
        return None
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('statement_timeout', %s, true), "
                         "set_config('lock_timeout', %s, true), "
                         "set_config('transaction_read_only', 'on', true)",
                         (f"{left}ms", f"{left}ms"))  # fmt: skip
            row = conn.execute(query).fetchone()
    except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable):
        return None
    assert row is not None
    return int(row[0]), None if row[1] is None else int(row[1])


_COUNT = sql.SQL("count(*)")


def pair(
    since: Since | None,
    what: sql.Composable | None = None,
    *,
    alias: str = "t",
    counter: sql.Composable = _COUNT,
) -> sql.Composed:
    """``count(*) FILTER (WHERE what), count(*) FILTER (WHERE what AND written since)`` (the
    second is NULL without a ``since``): both counts of one scan."""
    cond = what if what is not None else sql.SQL("true")
    later = since.test(alias) if since is not None else None
    second: sql.Composable = (
        sql.SQL("{c} FILTER (WHERE {w} AND {s})").format(c=counter, w=cond, s=later)
        if later is not None
        else sql.SQL("NULL::bigint")
    )
    return sql.SQL("{c} FILTER (WHERE {w}), {second}").format(c=counter, w=cond, second=second)


def _rows(
    conn: psycopg.Connection[Any],
    oid: int,
    name: str,
    change: str,
    since: Since | None,
    budget: Budget,
) -> Loss:
    """Every row of one table (its own rows: a child table is counted apart)."""
    # A partitioned table has no rows of its own: its partitions' rows go with it.
    only = sql.SQL("" if _relkind(conn, oid) == "p" else "ONLY ")
    query = sql.SQL("SELECT {p} FROM {o}{t}").format(p=pair(since), o=only, t=_target(name))
    counted = _counted(conn, query, budget)
    if counted is not None:
        return Loss(name, None, change, counted[0], since=counted[1])
    return Loss(name, None, change, _reltuples(conn, oid), estimated=True)


def _relkind(conn: psycopg.Connection[Any], oid: int) -> str:
    row = conn.execute("SELECT relkind::text FROM pg_class WHERE oid = %s", (oid,)).fetchone()
    return str(row[0]) if row else ""


def _reltuples(conn: psycopg.Connection[Any], oid: int) -> int | None:
    """The planner's row estimate (a partitioned table: its leaves'), None when never analysed."""
    row = conn.execute(
        "SELECT CASE WHEN c.relkind = 'p' THEN (SELECT sum(l.reltuples) FILTER (WHERE l.reltuples "
        ">= 0) FROM pg_partition_tree(c.oid) p JOIN pg_class l ON l.oid = p.relid WHERE p.isleaf)"
        " ELSE nullif(c.reltuples, -1) END::bigint FROM pg_class c WHERE c.oid = %s",
        (oid,),
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _matching(
    conn: psycopg.Connection[Any], probe: Probe, name: str, since: Since | None, budget: Budget
) -> Loss:
    """The rows a DELETE or UPDATE matches (distinct rows of its table, USING/FROM joined)."""
    alias = probe.alias or probe.table
    parts = [_target(name, alias)]
    if probe.source:
        parts.append(sql.SQL(probe.source))
    where = sql.SQL(" WHERE ({})").format(sql.SQL(probe.where)) if probe.where else sql.SQL("")
    from_where = sql.SQL("{}{}").format(sql.SQL(", ").join(parts), where)
    a = sql.Identifier(alias)
    counter = sql.SQL("count(DISTINCT ({a}.tableoid, {a}.ctid))").format(a=a)
    counts = pair(since, alias=alias, counter=counter) if probe.source else pair(since, alias=alias)
    query = sql.SQL("SELECT {p} FROM {fw}").format(p=counts, fw=from_where)
    try:
        counted = _counted(conn, query, budget)
    except psycopg.Error:  # the condition does not run alone: the statistics may still tell
        counted = None
    if counted is not None:
        return Loss(name, None, probe.change, counted[0], since=counted[1])
    return Loss(name, None, probe.change, _planned_rows(conn, from_where), estimated=True)


def _planned_rows(conn: psycopg.Connection[Any], from_where: sql.Composable) -> int | None:
    """EXPLAIN's row estimate for the rows a condition matches (nothing is executed)."""
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('lock_timeout', '1s', true)")
            row = conn.execute(
                sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {}").format(from_where)
            ).fetchone()
    except psycopg.Error:
        return None
    assert row is not None
    plan = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    return int(plan[0]["Plan"]["Plan Rows"])


def _values(
    conn: psycopg.Connection[Any],
    probe: Probe,
    oid: int,
    name: str,
    since: Since | None,
    budget: Budget,
) -> Loss:
    """The non-null values of a dropped column, or those a type change alters or refuses."""
    assert probe.column is not None
    col = sql.SQL("t.{}").format(sql.Identifier(probe.column))
    lost = sql.SQL("{} IS NOT NULL").format(col)
    note = None
    if probe.change == ALTER_TYPE:
        lost = sql.SQL("{c} IS NOT NULL AND ({e})::{old} IS DISTINCT FROM {c}").format(
            c=col, e=_cast(probe, col), old=sql.SQL(_column_type(conn, oid, probe.column))
        )
    query = sql.SQL("SELECT {p} FROM {t}").format(p=pair(since, lost), t=_target(name))
    try:
        counted = _counted(conn, query, budget)
    except psycopg.Error as exc:  # the cast itself fails on a current value
        counted, note = None, f"the new type refuses a current value: {_first_line(exc)}"
    if counted is not None:
        return Loss(name, probe.column, probe.change, counted[0], since=counted[1])
    if probe.change == ALTER_TYPE and note is None:
        note = "at most: every non-null value (the count was cut)"
    return Loss(
        name, probe.column, probe.change, _non_null(conn, oid, probe.column),
        estimated=True, note=note,
    )  # fmt: skip


def _cast(probe: Probe, col: sql.Composable) -> sql.Composable:
    if probe.cast is not None:
        return sql.SQL(probe.cast)  # the USING expression, over the table's own columns
    return sql.SQL("{}::{}").format(col, sql.SQL(probe.new_type or "text"))


def _column_type(conn: psycopg.Connection[Any], oid: int, column: str) -> str:
    row = conn.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s "
        "AND attname = %s",
        (oid, column),
    ).fetchone()
    assert row is not None
    return str(row[0])


def _non_null(conn: psycopg.Connection[Any], oid: int, column: str) -> int | None:
    """reltuples x (1 - null_frac): the statistics' non-null values of a column."""
    row = conn.execute(
        "SELECT (nullif(c.reltuples, -1) * (1 - coalesce(s.null_frac, 0)))::bigint, "
        "s.null_frac IS NOT NULL FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname "
        "AND s.attname = %s WHERE c.oid = %s",
        (column, oid),
    ).fetchone()
    return None if row is None or row[0] is None or not row[1] else int(row[0])


def _first_line(exc: psycopg.Error) -> str:
    return (exc.diag.message_primary or str(exc)).strip().splitlines()[0][:200]
