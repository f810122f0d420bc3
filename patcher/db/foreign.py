"""Other tools' history tables on PostgreSQL: the SQL side of the ``ForeignHistory`` port.

What the tools' tables hold and what their rows mean is ``patcher/core/foreign_tools.py``; here
they are found (``on_search_path``) and read (``read_foreign``), never written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from patcher.core.foreign_tools import (
    DEFAULT_TABLES,
    ROWS,
    TOOLS,
    ForeignState,
    check_columns,
    interpret,
    made_by,
)


def current_schema(conn: psycopg.Connection[Any], fallback: str) -> str:
    """The session's current schema (where a tool looks for an unqualified table)."""
    row = conn.execute("SELECT current_schema()").fetchone()
    return row[0] if row and row[0] else fallback


def read_foreign(
    conn: psycopg.Connection[Any], tool: str, schema: str, table: str, *, lock: bool = False
) -> ForeignState:
    """Read ``tool``'s table; ``lock`` takes it in SHARE mode (the tool cannot write to it
    until the adopting transaction ends). Raises ConfigError when it is missing or not the
    tool's."""
    ident = sql.Identifier(schema, table)
    shown = ident.as_string(conn)
    check_columns(tool, schema, table, _columns(conn, shown))
    if lock:
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(ident))
    columns, order = ROWS[tool]
    query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), ident, sql.Identifier(order)
    )
    return interpret(tool, shown, conn.execute(query).fetchall())


@contextmanager
def holding_foreign(
    conn: psycopg.Connection[Any], tool: str, schema: str, table: str
) -> Iterator[ForeignState]:
    """A transaction holding ``tool``'s table in SHARE mode, read: committed when the block
    ends, rolled back when it raises."""
    with conn.transaction():
        yield read_foreign(conn, tool, schema, table, lock=True)


def _columns(conn: psycopg.Connection[Any], shown: str) -> set[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
        "AND attnum > 0 AND NOT attisdropped",
        (shown,),
    ).fetchall()
    return {r[0] for r in rows}


_ON_SEARCH_PATH = (
    "SELECT n.nspname, c.relname, has_table_privilege(c.oid, 'SELECT'), "
    "array(SELECT attname::text FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 "
    "AND NOT attisdropped) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = ANY (current_schemas(false)) AND c.relname = ANY (%s) "
    "AND c.relkind IN ('r', 'p') ORDER BY array_position(current_schemas(false), n.nspname)"
)


def on_search_path(conn: psycopg.Connection[Any], ours: tuple[str, str]) -> list[tuple[str, str]]:
    """Other tools' history tables, under their default names, in every schema of the
    session's search_path (issue 26 item 12): ``(schema.table, tool)`` of each that
    records something (or that this role cannot read). Our own two tables are not others'."""
    names = sorted(set(DEFAULT_TABLES.values()))
    found = []
    for schema, table, readable, columns in conn.execute(_ON_SEARCH_PATH, (names,)).fetchall():
        if (schema, table) == ours:
            continue
        tool = next((t for t in TOOLS if made_by(t, table, set(columns))), None)
        if tool is None:
            continue
        ident = sql.Identifier(schema, table)
        if readable and not _records_something(conn, tool, ident):
            continue
        found.append((f"{schema}.{table}", tool))  # as adopt's --table takes it
    return found


def _records_something(conn: psycopg.Connection[Any], tool: str, ident: sql.Identifier) -> bool:
    where = {
        "golang-migrate": "version >= 0",
        "goose": "version_id <> 0",
        "flyway": "type NOT IN ('SCHEMA')",
    }.get(tool, "true")
    query = sql.SQL(f"SELECT EXISTS (SELECT FROM {{}} WHERE {where})").format(ident)
    row = conn.execute(query).fetchone()
    return bool(row and row[0])
