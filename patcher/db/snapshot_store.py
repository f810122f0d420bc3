"""The schema snapshot table ``<schema>.<table>_snp`` beside the history (SPEC section 13).

One row: the schema as the last schema-changing run left it (``snapshot_sql.aggregate_sql``),
its format, the tool version and the newest applied version then. The name takes a 4-byte
suffix like ``_log``, so every table name SPEC 3 allows (59 bytes) still fits PostgreSQL's
63-byte identifiers. The body is JSON text, compressed by PostgreSQL itself (TOAST: a value over
2 kB is compressed before it is stored), so it is built and stored in the very statement that
writes the history row (``history.py`` adds ``snapshot_cte``): no extra round trip, and it
commits or rolls back with that row. ``drift`` reads it back (``read_stored``) and the live
schema with the same query (``read_live``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from patcher import __version__
from patcher.core.errors import MissingSnapshot
from patcher.core.schema_drift import (
    SNAPSHOT_FORMAT,
    Comparison,
    DriftReading,
    Objects,
    compare,
    objects_of,
    parse_body,
)
from patcher.db import snapshot_sql

SUFFIX = "_snp"
COLUMNS = {"id", "format", "tool_version", "version", "taken_at", "objects", "body"}
DDL = """
CREATE TABLE IF NOT EXISTS {snp} (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    format integer NOT NULL,
    tool_version text NOT NULL,
    version bigint,
    taken_at timestamptz NOT NULL DEFAULT now(),
    objects integer NOT NULL,
    body text NOT NULL
)
"""
_STORE = (
    "INSERT INTO {snp} (id, format, tool_version, version, objects, body) "
    "SELECT true, %(snap_format)s, %(snap_tool)s, {version}, s.objects, s.body FROM ({agg}) s "
    "ON CONFLICT (id) DO UPDATE SET format = EXCLUDED.format, tool_version = "
    "EXCLUDED.tool_version, version = EXCLUDED.version, taken_at = now(), objects = "
    "EXCLUDED.objects, body = EXCLUDED.body"
)
_UPSERT = f"snap AS ({_STORE})"
# The newest applied version once the history change beside it is made (a CTE's change is
# not visible to the other parts of its statement).
VERSION_AFTER = {
    "up": "greatest((SELECT max(version) FROM {history}), %(version)s)",
    "down": "(SELECT max(version) FROM {history} WHERE version <> %(version)s)",
    "same": "(SELECT max(version) FROM {history})",
}


def table_name(table: str) -> str:
    return f"{table}{SUFFIX}"


def own_tables(schema: str, table: str) -> list[str]:
    """The runner's own tables, left out of every snapshot."""
    return [f"{schema}.{table}", f"{schema}.{table}_log", f"{schema}.{table_name(table)}"]


def snapshot_cte(history: sql.Composable, snp: sql.Composable, after: str) -> sql.Composed:
    """The CTE that stores the snapshot in a history write's statement (its parameters:
    ``snapshot_params``, and the write's own ``version``)."""
    version = sql.SQL(VERSION_AFTER[after]).format(history=history)
    return sql.SQL(_UPSERT).format(snp=snp, version=version, agg=sql.SQL(aggregate()))


def store_now(
    conn: psycopg.Connection[Any], schema: str, table: str, restore: str, locked: bool
) -> str | None:
    """Store the snapshot of the schema as it is, in its own transaction (a run that stopped
    before its last write: engine/snapshot_once.py); None when stored, else a warning. Never
    raises: the run's result is what its migrations did."""
    why = (
        "the run lost its advisory lock (the run that holds it stores its own)"
        if not locked
        else None
    )
    if why is None:
        history = sql.Identifier(schema, table)
        query = sql.SQL(_STORE).format(
            snp=sql.Identifier(schema, table_name(table)),
            version=sql.SQL(VERSION_AFTER["same"]).format(history=history),
            agg=sql.SQL(aggregate()),
        )
        try:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")  # an interrupted migration's: it never committed
            conn.execute(restore, prepare=False)  # the scripts' SETs (search_path) are undone
            with conn.transaction():
                conn.execute(query, snapshot_params(schema, table))
            return None
        except psycopg.Error as exc:
            why = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    return (
        f"the run stopped before its last migration and could not store the schema snapshot of "
        f"the state it left ({why}); until a run stores one, drift reports the snapshot as "
        "older than the history (invalid) rather than comparing against it"
    )


def aggregate() -> str:
    return snapshot_sql.aggregate_sql()


def snapshot_params(schema: str, table: str) -> dict[str, Any]:
    return {
        "snap_format": SNAPSHOT_FORMAT,
        "snap_tool": __version__,
        "own": own_tables(schema, table),
    }


def ensure(conn: psycopg.Connection[Any], schema: str, table: str) -> str | None:
    """Create the snapshot table when missing (in the caller's transaction); None when
    snapshots can be written, else why not (a table of that name that is not ours)."""
    name = sql.Identifier(schema, table_name(table))
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
        "AND attnum > 0 AND NOT attisdropped",
        (name.as_string(conn),),
    ).fetchall()
    columns = {r[0] for r in rows}
    if columns and not columns >= COLUMNS:
        return (
            f"table {schema}.{table_name(table)} is not the snapshot table StackFlowPatcher "
            f"makes (missing: {', '.join(sorted(COLUMNS - columns))}): no schema snapshot "
            "was stored; drop it (the next run that changes the schema recreates it)"
        )
    conn.execute(sql.SQL(DDL).format(snp=name))
    return None


def probe(conn: psycopg.Connection[Any], schema: str, table: str) -> str | None:
    """None when this role can read every catalog table the snapshot reads (checked without
    reading them: LIMIT 0), else the server's refusal."""
    try:
        conn.execute(
            f"SELECT 1 FROM ({snapshot_sql.objects_sql()}) AS o LIMIT 0",
            {"own": own_tables(schema, table)},
        )
    except psycopg.errors.InsufficientPrivilege as exc:
        return f"no schema snapshot was stored: the runner cannot read the catalog ({exc})"
    return None


@dataclass(frozen=True)
class Stored:
    version: int | None
    tool_version: str
    taken_at: Any
    objects: Objects
    size_bytes: int


def read_stored(conn: psycopg.Connection[Any], schema: str, table: str) -> Stored:
    """The stored snapshot, or ``MissingSnapshot`` saying why there is none and what to do."""
    name = f"{schema}.{table_name(table)}"
    take = (
        "the next 'patcher migrate' that applies a version stores one; on a database that is "
        "up to date, 'patcher baseline' (a new history) or 'patcher adopt' take one"
    )
    try:
        with conn.transaction():
            row = conn.execute(
                sql.SQL(
                    "SELECT format, tool_version, version, taken_at, body, "
                    "pg_column_size(body) FROM {}"
                ).format(sql.Identifier(schema, table_name(table)))
            ).fetchone()
    except psycopg.errors.UndefinedTable:
        raise MissingSnapshot(
            f"no schema snapshot: table {name} does not exist (a database migrated by a "
            f"version before snapshots, or never migrated); {take}",
            table=name,
        ) from None
    except (psycopg.errors.UndefinedColumn, psycopg.errors.DatatypeMismatch) as exc:
        raise MissingSnapshot(
            f"table {name} was altered and is not the snapshot table StackFlowPatcher makes "
            f"({exc.diag.message_primary}); drop it, then {take}",
            table=name,
        ) from None
    if row is None:
        raise MissingSnapshot(f"no schema snapshot: table {name} is empty; {take}", table=name)
    fmt, tool, version, taken_at, body, size = row
    if not isinstance(fmt, int) or fmt > SNAPSHOT_FORMAT:
        raise MissingSnapshot(
            f"the schema snapshot in {name} was written by StackFlowPatcher {tool} (snapshot "
            f"format {fmt}); this version ({__version__}) reads format {SNAPSHOT_FORMAT}: run "
            f"drift with {tool} or newer",
            table=name,
        )
    try:
        objects = parse_body(body)
    except (ValueError, TypeError, AttributeError) as exc:
        raise MissingSnapshot(
            f"the schema snapshot in {name} cannot be read ({exc}); it was changed by hand. "
            f"Delete its row, then {take}",
            table=name,
        ) from None
    return Stored(version, tool, taken_at, objects, int(size))


def read_live(conn: psycopg.Connection[Any], schema: str, table: str) -> tuple[Objects, list[str]]:
    """The live schema's objects, and the kinds this role could not read (each part of the
    query on its own when the whole is refused)."""
    params = {"own": own_tables(schema, table)}
    try:
        with conn.transaction():
            return objects_of(conn.execute(snapshot_sql.objects_sql(), params).fetchall()), []
    except psycopg.errors.InsufficientPrivilege:
        pass
    rows: list[Any] = []
    blind: list[str] = []
    for part in snapshot_sql.PARTS:
        try:
            with conn.transaction():
                rows += conn.execute(snapshot_sql.objects_sql((part,)), params).fetchall()
        except psycopg.errors.InsufficientPrivilege:
            blind += snapshot_sql.kinds_of(part)
    return objects_of(rows), blind


def read_drift(
    conn: psycopg.Connection[Any], schema: str, table: str, ignore: Sequence[str]
) -> DriftReading:
    """The stored snapshot held against the live schema (``MissingSnapshot`` when none).

    First on the server alone: when the live body is the stored one, byte for byte (the
    common case), nothing is sent back or compared here."""
    same = _unchanged(conn, schema, table)
    if same is not None:
        return same
    stored = read_stored(conn, schema, table)
    live, blind = read_live(conn, schema, table)
    comparison = compare(stored.objects, live, ignore=ignore, unreadable_kinds=blind)
    return DriftReading(
        comparison=comparison,
        version=stored.version,
        taken_at=stored.taken_at.isoformat() if stored.taken_at is not None else "",
        tool_version=stored.tool_version,
        snapshot_objects=len(stored.objects),
        live_objects=len(live),
        snapshot_bytes=stored.size_bytes,
    )


def _unchanged(conn: psycopg.Connection[Any], schema: str, table: str) -> DriftReading | None:
    """The reading of a schema identical to a readable stored snapshot; None otherwise (no
    snapshot, a damaged one, a catalog this role cannot read whole, or any difference)."""
    query = sql.SQL(
        "SELECT s.version, s.taken_at, s.tool_version, s.objects, pg_column_size(s.body) "
        "FROM {} s, ({}) l WHERE s.format = %(snap_format)s AND s.body = l.body"
    ).format(sql.Identifier(schema, table_name(table)), sql.SQL(aggregate()))
    params = snapshot_params(schema, table)
    try:
        with conn.transaction():
            row = conn.execute(query, params).fetchone()
    except (psycopg.ProgrammingError, psycopg.DataError):
        return None  # no table, an altered one, a catalog refused: the full path says which
    if row is None:
        return None
    version, taken_at, tool, objects, size = row
    return DriftReading(
        comparison=Comparison([]),
        version=version,
        taken_at=taken_at.isoformat() if taken_at is not None else "",
        tool_version=tool,
        snapshot_objects=objects,
        live_objects=objects,
        snapshot_bytes=int(size),
    )
