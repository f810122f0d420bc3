"""``measure``: what down scripts really destroy, from running them in a transaction that is
always rolled back (a rollback preview with ``verify``; SPEC section 4, ``data_at_risk``).

Each script runs under a savepoint. The catalog, the storage (relfilenode) and the
transaction's own statistics (``pg_stat_xact_user_tables``) before and after tell which
pre-existing tables it dropped, emptied, deleted from, updated, or whose columns it dropped or
retyped, whatever the statement (a cascade, a trigger, a DO block). Only when it touched one:
back to the savepoint, count those tables' rows and values (``count(*)`` of each table's own
rows), run the script again and count what is left. Untouched tables are not counted: their
counts cannot have changed. Nothing is left changed: the transaction is rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from patcher.core.data_loss import (
    ALTER_TYPE,
    DELETE,
    DROP,
    DROP_COLUMN,
    TRUNCATE,
    UPDATE,
    Loss,
    Probe,
)
from patcher.core.errors import StatementFailed
from patcher.core.models import StopCheck
from patcher.db.data_counts import Since, pair
from patcher.db.execution import run_statements

_SAVEPOINT = "SAVEPOINT patcher_at_risk"
_USER = (
    "c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema', "
    "'pg_toast') AND n.nspname NOT LIKE 'pg_temp%'"
)


@dataclass
class _State:
    rels: dict[int, tuple[tuple[str, str], int]] = field(default_factory=dict)  # (name, node)
    cols: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)  # (name, type)
    stats: dict[int, tuple[int, int]] = field(default_factory=dict)  # (updated, deleted)


@dataclass
class _Touched:
    dropped: set[int] = field(default_factory=set)
    counted: set[int] = field(default_factory=set)  # rewritten or deleted from
    updated: dict[int, int] = field(default_factory=dict)
    deleted: dict[int, int] = field(default_factory=dict)
    columns: list[tuple[int, str]] = field(default_factory=list)  # dropped
    retyped: list[tuple[int, str, str, str]] = field(default_factory=list)  # col, old, new

    def __bool__(self) -> bool:
        return bool(self.dropped or self.counted or self.updated or self.columns or self.retyped)


def measure(
    conn: psycopg.Connection[Any],
    scripts: Sequence[Sequence[str]],
    sinces: Sequence[Since | None],
    casts: Sequence[Sequence[Probe]],
    *,
    lock_timeout_ms: int,
    skip: frozenset[str] = frozenset(),
    stop: StopCheck | None = None,
) -> tuple[list[list[Loss]], StatementFailed | None]:
    """The losses of each script in turn (each runs on what the ones before it left); stops
    at the first failure, returned beside the losses of the scripts before it. ``casts``:
    each script's ALTER COLUMN TYPE probes (their USING expressions); ``skip``: relations
    (``schema.table``) never reported, the history and its log."""
    found: list[list[Loss]] = []
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{lock_timeout_ms}ms",))
        for statements, since, alters in zip(scripts, sinces, casts, strict=True):
            conn.execute(_SAVEPOINT)
            before = _state(conn, skip)
            run_statements(conn, statements, stop)
            touched = _touched(before, _state(conn, skip))
            if touched:
                conn.execute("ROLLBACK TO " + _SAVEPOINT)
                counts = _counts(conn, before, touched, since, alters)
                run_statements(conn, statements, stop)
                found.append(_losses(conn, before, touched, since, counts))
            else:
                found.append([])
            conn.execute("RELEASE " + _SAVEPOINT)
    except StatementFailed as exc:
        return found, exc
    except psycopg.errors.QueryCanceled as exc:
        return found, StatementFailed(f"counting was cut: {exc}", cancelled=True)
    finally:
        if not conn.broken:
            conn.execute("ROLLBACK")
    return found, None


def _state(conn: psycopg.Connection[Any], skip: frozenset[str]) -> _State:
    state = _State()
    for oid, schema, name, node in conn.execute(
        "SELECT c.oid::bigint, n.nspname, c.relname, pg_relation_filenode(c.oid)::bigint "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE " + _USER
    ).fetchall():
        if f"{schema}.{name}" not in skip:
            state.rels[int(oid)] = ((str(schema), str(name)), int(node or 0))
    for rel, num, name, kind in conn.execute(
        "SELECT a.attrelid::bigint, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE a.attnum > 0 AND NOT a.attisdropped AND " + _USER
    ).fetchall():
        if int(rel) in state.rels:
            state.cols[(int(rel), int(num))] = (str(name), str(kind))
    for rel, upd, dele in conn.execute(
        "SELECT relid::bigint, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables"
    ).fetchall():
        state.stats[int(rel)] = (int(upd), int(dele))
    return state


def _touched(before: _State, after: _State) -> _Touched:
    out = _Touched()
    for oid, (_name, node) in before.rels.items():
        if oid not in after.rels:
            out.dropped.add(oid)
            continue
        upd0, del0 = before.stats.get(oid, (0, 0))
        upd1, del1 = after.stats.get(oid, (0, 0))
        if after.rels[oid][1] != node or del1 > del0:
            out.counted.add(oid)
        if upd1 > upd0:
            out.updated[oid] = upd1 - upd0
        if del1 > del0:
            out.deleted[oid] = del1 - del0
    for (oid, num), (name, kind) in before.cols.items():
        if oid in out.dropped:
            continue
        now = after.cols.get((oid, num))
        if now is None:
            out.columns.append((oid, name))
        elif now[1] != kind:
            out.retyped.append((oid, name, kind, now[1]))
    return out


def _table(before: _State, oid: int) -> sql.Composable:
    return sql.Identifier(*before.rels[oid][0])


def _count(
    conn: psycopg.Connection[Any], table: sql.Composable, what: sql.Composable, since: Since | None
) -> tuple[int, int | None]:
    row = conn.execute(
        sql.SQL("SELECT {p} FROM ONLY {t} t").format(p=pair(since, what), t=table)
    ).fetchone()
    assert row is not None
    return int(row[0]), None if row[1] is None else int(row[1])


_ALL = sql.SQL("true")


def _counts(
    conn: psycopg.Connection[Any],
    before: _State,
    touched: _Touched,
    since: Since | None,
    alters: Sequence[Probe],
) -> dict[tuple[int, str | None], tuple[int, int | None]]:
    """In the state before the script: rows of the touched tables, values of the touched
    columns (a retyped column: the values its new type changes)."""
    out: dict[tuple[int, str | None], tuple[int, int | None]] = {}
    for oid in touched.dropped | touched.counted:
        out[(oid, None)] = _count(conn, _table(before, oid), _ALL, since)
    for oid, col in touched.columns:
        what = sql.SQL("t.{} IS NOT NULL").format(sql.Identifier(col))
        out[(oid, col)] = _count(conn, _table(before, oid), what, since)
    for oid, col, old, new in touched.retyped:
        out[(oid, col)] = _count(
            conn, _table(before, oid), _changed(before, oid, col, old, new, alters), since
        )
    return out


def _changed(
    before: _State, oid: int, col: str, old: str, new: str, alters: Sequence[Probe]
) -> sql.Composable:
    """SQL true for a value of ``col`` the type change alters (cast back, it differs)."""
    schema, name = before.rels[oid][0]
    column = sql.SQL("t.{}").format(sql.Identifier(col))
    cast: sql.Composable = sql.SQL("{}::{}").format(column, sql.SQL(new))
    for probe in alters:
        same = probe.key == f"{schema}.{name}" and probe.column == col
        if same and probe.change == ALTER_TYPE and probe.cast is not None:
            cast = sql.SQL("({})::{}").format(sql.SQL(probe.cast), sql.SQL(new))
    return sql.SQL("{c} IS NOT NULL AND ({e})::{o} IS DISTINCT FROM {c}").format(
        c=column, e=cast, o=sql.SQL(old)
    )


def _losses(
    conn: psycopg.Connection[Any],
    before: _State,
    touched: _Touched,
    since: Since | None,
    counts: dict[tuple[int, str | None], tuple[int, int | None]],
) -> list[Loss]:
    """After the script ran again: what is gone, by table and column."""
    losses: list[Loss] = []
    for oid in sorted(touched.dropped | touched.counted, key=lambda o: before.rels[o][0]):
        name = ".".join(before.rels[oid][0])
        rows, old_since = counts[(oid, None)]
        if oid in touched.dropped:
            losses.append(Loss(name, None, DROP, rows, since=old_since))
            continue
        left, left_since = _count(conn, _table(before, oid), _ALL, since)
        if left < rows:
            kind = DELETE if oid in touched.deleted else TRUNCATE
            gone_since = None if old_since is None else max(0, old_since - (left_since or 0))
            losses.append(Loss(name, None, kind, rows - left, since=gone_since))
    for oid, count in touched.updated.items():
        losses.append(Loss(".".join(before.rels[oid][0]), None, UPDATE, count))
    for oid, col in touched.columns:
        values, values_since = counts[(oid, col)]
        losses.append(
            Loss(".".join(before.rels[oid][0]), col, DROP_COLUMN, values, since=values_since)
        )
    for oid, col, _old, _new in touched.retyped:
        values, values_since = counts[(oid, col)]
        losses.append(
            Loss(".".join(before.rels[oid][0]), col, ALTER_TYPE, values, since=values_since)
        )
    return losses
