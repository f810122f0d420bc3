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

from patcher.core.data_loss import ALTER_TYPE, DELETE, DROP, TRUNCATE, UPDATE, Created, Loss, Probe
from patcher.db.data_reach import ForeignKey, cascading_keys, reached


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
    conn: psycopg.Connection[Any],
    found: Sequence[Probe],
    since: Since | None,
    budget: Budget,
    created: Created | None = None,
) -> list[Loss]:
    """Every probe counted (or estimated), plus the tables a CASCADE or inheritance reaches.

    What ``created`` holds is counted without ``since``: the version made it, so every row is
    written since (the report says ``written_since_applied`` and drops the figure), and the
    dating test (``age(xmin)``, parallel restricted) would keep the count from PostgreSQL's
    parallel workers: about twice the time of a bare ``count(*)`` on a big table."""
    made = created or Created()

    def dated(relation: str, column: str | None = None) -> Since | None:
        return None if made.holds(relation, column) else since

    losses: list[Loss] = []
    emptied: set[int] = set()
    for probe in found:
        rel = _relation(conn, probe.key)
        if rel is None:
            continue  # gone already (IF EXISTS), or not a table: nothing to count
        oid, name = rel
        if probe.change in (DROP, TRUNCATE):
            for child_oid, child in [(oid, name), *reached(conn, oid, probe)]:
                if child_oid not in emptied:  # each table once per script
                    emptied.add(child_oid)
                    losses.append(_rows(conn, child_oid, child, probe.change, dated(child), budget))
        elif probe.change in (DELETE, UPDATE):
            losses.append(_matching(conn, probe, name, dated(name), budget))
            if probe.change == DELETE:  # ON DELETE CASCADE, one level (verify sees them all)
                for fk in cascading_keys(conn, oid):
                    losses.append(_cascaded(conn, probe, name, fk, dated(fk.table), budget))
        elif probe.column is not None and _has_column(conn, oid, probe.column):
            losses.append(_values(conn, probe, oid, name, dated(name, probe.column), budget))
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


def _has_column(conn: psycopg.Connection[Any], oid: int, column: str) -> bool:
    return bool(
        conn.execute(
            "SELECT 1 FROM pg_attribute WHERE attrelid = %s AND attname = %s AND attnum > 0 "
            "AND NOT attisdropped",
            (oid, column),
        ).fetchone()
    )


def _target(name: str, alias: str = "t", *, only: bool = False) -> sql.Composable:
    schema, _, table = name.partition(".")
    return sql.SQL("{}{} {}").format(
        sql.SQL("ONLY " if only else ""), sql.Identifier(schema, table), sql.Identifier(alias)
    )


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


def _from_where(probe: Probe, name: str) -> tuple[str, sql.Composed]:
    """The alias and ``FROM … WHERE …`` of a DELETE's or UPDATE's rows."""
    alias = probe.alias or probe.table
    parts = [_target(name, alias, only=probe.only)]
    if probe.source:
        parts.append(sql.SQL(probe.source))
    where = sql.SQL(" WHERE ({})").format(sql.SQL(probe.where)) if probe.where else sql.SQL("")
    return alias, sql.SQL("{}{}").format(sql.SQL(", ").join(parts), where)


def _matching(
    conn: psycopg.Connection[Any], probe: Probe, name: str, since: Since | None, budget: Budget
) -> Loss:
    """The rows a DELETE or UPDATE matches (distinct rows of its table, USING/FROM joined)."""
    alias, from_where = _from_where(probe, name)
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


def _cascaded(
    conn: psycopg.Connection[Any],
    probe: Probe,
    name: str,
    fk: ForeignKey,
    since: Since | None,
    budget: Budget,
) -> Loss:
    """Rows of a referencing table that ON DELETE CASCADE removes with the deleted ones."""
    alias, from_where = _from_where(probe, name)
    mine = sql.SQL(", ").join(sql.SQL("c.{}").format(sql.Identifier(k)) for k in fk.columns)
    theirs = sql.SQL(", ").join(
        sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(k)) for k in fk.referenced
    )
    query = sql.SQL("SELECT {p} FROM {t} WHERE ({m}) IN (SELECT {r} FROM {fw})").format(
        p=pair(since, alias="c"), t=_target(fk.table, "c"), m=mine, r=theirs, fw=from_where
    )
    try:
        counted = _counted(conn, query, budget)
    except psycopg.Error:
        counted = None
    if counted is not None:
        return Loss(fk.table, None, DELETE, counted[0], since=counted[1])
    note = "removed by ON DELETE CASCADE; not counted within the budget"
    return Loss(fk.table, None, DELETE, None, estimated=True, note=note)


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
