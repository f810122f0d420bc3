"""What previews read from the catalogs: estimated table sizes, and ``verify``, which runs
scripts in a transaction that is always rolled back and reports the relation locks each took
and the tables it rewrote (a changed relfilenode).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from patcher.core.errors import StatementFailed
from patcher.core.models import IndexState, StopCheck, VerifyReport
from patcher.db.execution import ms_since, run_statements

_USER_RELATIONS = (
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p', 'm') "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
)
"""Tables (plain, partitioned) and materialised views outside the system schemas."""


def table_sizes(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Estimated rows of every user table, by ``schema.table`` (``-1``: never analysed)."""
    rows = conn.execute(
        "SELECT n.nspname || '.' || c.relname, c.reltuples::bigint " + _USER_RELATIONS
    ).fetchall()
    return {name: int(count) for name, count in rows}


def indexes(conn: psycopg.Connection[Any]) -> list[IndexState]:
    """Every index outside the system schemas, ``schema.name`` (quoted where needed), valid?"""
    rows = conn.execute(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), i.indisvalid "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
    ).fetchall()
    return [IndexState(str(name), bool(valid)) for name, valid in rows]


def drop_index(conn: psycopg.Connection[Any], name: str) -> bool:
    """DROP INDEX CONCURRENTLY IF EXISTS, for a name ``indexes`` returned (already quoted);
    False when it could not (it waits for the same transactions the failed build did)."""
    try:
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.SQL(name)))
    except psycopg.errors.LockNotAvailable:
        return False
    return True


def verify(
    conn: psycopg.Connection[Any],
    scripts: Sequence[Sequence[str]],
    lock_timeout_ms: int,
    stop: StopCheck | None = None,
    restore: str = "",
) -> list[VerifyReport]:
    """Run each script in one transaction that is always rolled back; report what each did.

    Stops at the first failure (later scripts usually build on earlier ones). Each script
    after the first starts from the session ``restore`` gives, as in the run (SPEC 7 item 2:
    a PREPARE, which no ROLLBACK undoes, a temp table, a SET); the restore rides with the
    catalog read before the script, and after the ROLLBACK, so no round trip is added."""
    reports: list[VerifyReport] = []
    local = f"SET LOCAL lock_timeout = '{int(lock_timeout_ms)}ms';\n"
    try:
        conn.execute("BEGIN")
        conn.execute(local, prepare=False)
        tables = _relations(conn)
        held: set[tuple[str, str]] = set()
        for i, statements in enumerate(scripts):
            before = _relfilenodes(conn, f"{restore}{local}" if i and restore else "")
            started = time.perf_counter()
            try:
                run_statements(conn, statements, stop)
            except StatementFailed as exc:
                reports.append(VerifyReport(ms_since(started), [], [], exc))
                break
            elapsed = ms_since(started)
            locks = _own_locks(conn, tables) - held
            held |= locks
            after = _relfilenodes(conn)
            rewritten = sorted(
                tables[oid] for oid, node in before.items()
                if oid in tables and after.get(oid, node) != node
            )  # fmt: skip
            reports.append(VerifyReport(elapsed, sorted(locks), rewritten, None))
    finally:
        if not conn.broken:
            conn.execute(f"ROLLBACK;\n{restore}", prepare=False)
    return reports


def _relations(conn: psycopg.Connection[Any]) -> dict[int, str]:
    """Every pre-existing user table (plain or partitioned) and materialised view: oid -> name."""
    rows = conn.execute(
        "SELECT c.oid::bigint, n.nspname || '.' || c.relname " + _USER_RELATIONS
    ).fetchall()
    return {int(oid): name for oid, name in rows}


def _relfilenodes(conn: psycopg.Connection[Any], before: str = "") -> dict[int, int]:
    """Each relation's filenode; ``before``: statements sent first in the same message."""
    cur = conn.cursor()
    cur.execute(
        f"{before}SELECT oid::bigint, pg_relation_filenode(oid)::bigint FROM pg_class "
        "WHERE relkind IN ('r', 'p', 'm') AND relnamespace NOT IN "
        "('pg_catalog'::regnamespace, 'information_schema'::regnamespace)",
        prepare=False,
    )
    while cur.nextset():
        pass
    return {int(oid): int(node or 0) for oid, node in cur.fetchall()}


def _own_locks(conn: psycopg.Connection[Any], tables: dict[int, str]) -> set[tuple[str, str]]:
    rows = conn.execute(
        "SELECT relation::bigint, mode FROM pg_locks WHERE pid = pg_backend_pid() "
        "AND locktype = 'relation' AND granted AND relation IS NOT NULL"
    ).fetchall()
    return {(tables[int(rel)], mode) for rel, mode in rows if int(rel) in tables}
