"""Other tools' history tables, read as those tools write them (for ``patcher adopt``).

Each tool's default table and columns, from its own source:

    golang-migrate  schema_migrations(version bigint not null primary key, dirty boolean not
                    null): one row, the newest version applied; every lower one is applied too
    dbmate          schema_migrations(version varchar primary key): a row per applied version
    goose           goose_db_version(id, version_id bigint, is_applied boolean, tstamp): a row
                    per up (and, before goose 3.x's delete, per down); version 0 is its marker
    sqlx            _sqlx_migrations(version bigint primary key, description, installed_on,
                    success boolean, checksum bytea SHA-384, execution_time bigint)
    flyway          flyway_schema_history(installed_rank, version varchar(50), description,
                    type, script, checksum integer CRC-32, installed_by, installed_on,
                    execution_time, success): a row per attempt, versioned and repeatable

``read_foreign`` returns what a tool says is applied, and what stops an adoption (dirty and
failed rows, versions that are not integers); it never writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from patcher.core.errors import ConfigError

DEFAULT_TABLES = {
    "golang-migrate": "schema_migrations",
    "dbmate": "schema_migrations",
    "goose": "goose_db_version",
    "sqlx": "_sqlx_migrations",
    "flyway": "flyway_schema_history",
}
COLUMNS = {
    "golang-migrate": {"version", "dirty"},
    "dbmate": {"version"},
    "goose": {"id", "version_id", "is_applied", "tstamp"},
    "sqlx": {"version", "description", "installed_on", "success", "checksum", "execution_time"},
    "flyway": {
        "installed_rank", "version", "description", "type", "script", "checksum",
        "installed_by", "installed_on", "execution_time", "success",
    },
}  # fmt: skip
FIX = {  # what to do, in the tool itself, about a dirty or failed state
    "golang-migrate": "fix the database by hand, then 'migrate force VERSION' to the version it "
    "is really at",
    "sqlx": "fix the database by hand, then delete the row with success = false (or rerun "
    "'sqlx migrate run' once the script is fixed)",
    "flyway": "fix the database by hand, then run 'flyway repair' to remove the failed rows",
}


@dataclass
class ForeignHistory:
    """What another tool's table says: applied versions and what blocks adopting them."""

    tool: str
    table: str  # schema-qualified, quoted as SQL
    applied: set[int] = field(default_factory=set)
    up_to: int | None = None  # golang-migrate's one version / Flyway's baseline: all below too
    baseline: int | None = None  # Flyway's SQL_BASELINE row: a B file ran; all below covered
    problems: list[str] = field(default_factory=list)
    repeatables: dict[str, int] = field(default_factory=dict)  # Flyway: script -> CRC-32
    sqlx_checksums: dict[int, bytes] = field(default_factory=dict)


def read_foreign(
    conn: psycopg.Connection[Any], tool: str, schema: str, table: str, *, lock: bool = False
) -> ForeignHistory:
    """Read ``tool``'s table; ``lock`` takes it in SHARE mode (the tool cannot write to it
    until the adopting transaction ends). Raises ConfigError when it is missing or not the
    tool's."""
    ident = sql.Identifier(schema, table)
    shown = ident.as_string(conn)
    columns = _columns(conn, shown)
    if not columns:
        raise ConfigError(
            f"no table {schema}.{table}: {tool}'s history was not found. Give its name with "
            f"--table (payload: table), as NAME or SCHEMA.NAME (default {DEFAULT_TABLES[tool]} "
            "in the session's current schema, the first of its search_path)"
        )
    if not COLUMNS[tool] <= columns or (tool == "dbmate" and "dirty" in columns):
        raise ConfigError(
            f"{schema}.{table} is not {tool}'s history table: it has columns "
            f"{', '.join(sorted(columns))}, {tool} writes {', '.join(sorted(COLUMNS[tool]))}"
            f"{_guess(columns)}. Check --from and --table"
        )
    if lock:
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(ident))
    found = ForeignHistory(tool, shown)
    _READERS[tool](conn, ident, found)
    return found


def _columns(conn: psycopg.Connection[Any], shown: str) -> set[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
        "AND attnum > 0 AND NOT attisdropped",
        (shown,),
    ).fetchall()
    return {r[0] for r in rows}


def _guess(columns: set[str]) -> str:
    for tool, expected in COLUMNS.items():
        if expected == columns or (tool != "dbmate" and expected <= columns):
            return f" (it looks like {tool}'s: use --from {tool})"
    return ""


def _rows(conn: psycopg.Connection[Any], query: str, ident: sql.Identifier) -> list[Any]:
    return conn.execute(sql.SQL(query).format(ident)).fetchall()


def _golang_migrate(
    conn: psycopg.Connection[Any], ident: sql.Identifier, out: ForeignHistory
) -> None:
    rows = _rows(conn, "SELECT version, dirty FROM {}", ident)
    if len(rows) > 1:
        out.problems.append(f"{out.table} has {len(rows)} rows; golang-migrate keeps exactly one")
    for version, dirty in rows:
        if dirty:
            out.problems.append(f"golang-migrate marks version {version} dirty (a failed run)")
        if version >= 0:  # -1: no version (golang-migrate's NilVersion)
            out.up_to = max(out.up_to or 0, int(version))
            out.applied.add(int(version))


def _dbmate(conn: psycopg.Connection[Any], ident: sql.Identifier, out: ForeignHistory) -> None:
    for (version,) in _rows(conn, "SELECT version FROM {} ORDER BY version", ident):
        if not str(version).isdigit() or len(str(version)) > 18:
            out.problems.append(f"dbmate version {str(version)[:40]!r} is not 1 to 18 digits")
        else:
            out.applied.add(int(version))


def _goose(conn: psycopg.Connection[Any], ident: sql.Identifier, out: ForeignHistory) -> None:
    latest = (
        "SELECT DISTINCT ON (version_id) version_id, is_applied FROM {} "
        "ORDER BY version_id, id DESC"
    )
    for version, is_applied in _rows(conn, latest, ident):
        if version != 0 and is_applied:  # goose's own marker row is version 0
            out.applied.add(int(version))


def _sqlx(conn: psycopg.Connection[Any], ident: sql.Identifier, out: ForeignHistory) -> None:
    for version, success, digest in _rows(
        conn, "SELECT version, success, checksum FROM {} ORDER BY version", ident
    ):
        if not success:
            out.problems.append(f"sqlx marks version {version} failed (success = false)")
            continue
        out.applied.add(int(version))
        out.sqlx_checksums[int(version)] = bytes(digest)


def _flyway(conn: psycopg.Connection[Any], ident: sql.Identifier, out: ForeignHistory) -> None:
    rows = _rows(
        conn,
        "SELECT version, type, script, checksum, success FROM {} ORDER BY installed_rank",
        ident,
    )
    for version, kind, script, crc, success in rows:
        if kind in ("SCHEMA", "DELETE") or ((kind or "").startswith("UNDO") and not success):
            continue
        if not success:
            out.problems.append(f"flyway records a failed run of {script} (success = false)")
            continue
        if version is None:
            out.repeatables[script] = crc
            continue
        if not str(version).isdigit() or len(str(version)) > 18:
            out.problems.append(
                f"flyway version {version!r} ({script}) is not an integer: rename the files to "
                "integer versions and update flyway_schema_history.version to match first"
            )
            continue
        if kind.startswith("UNDO"):
            out.applied.discard(int(version))
        elif kind == "BASELINE":
            out.up_to = max(out.up_to or 0, int(version))
        elif kind == "SQL_BASELINE":  # a B<N>__ file ran on a fresh database (Flyway 9+)
            out.baseline = max(out.baseline or 0, int(version))
            out.applied.add(int(version))
        else:
            out.applied.add(int(version))


_READERS = {
    "golang-migrate": _golang_migrate,
    "dbmate": _dbmate,
    "goose": _goose,
    "sqlx": _sqlx,
    "flyway": _flyway,
}


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


TOOLS = ("golang-migrate", "dbmate", "goose", "sqlx", "flyway")


def made_by(tool: str, table: str, columns: set[str]) -> bool:
    """Whether ``table`` with ``columns`` is ``tool``'s history under its default name."""
    if DEFAULT_TABLES[tool] != table or not COLUMNS[tool] <= columns:
        return False
    if tool == "golang-migrate":
        return columns == COLUMNS[tool]  # ours has version and dirty too, and more
    return tool != "dbmate" or columns == COLUMNS[tool]


def _records_something(conn: psycopg.Connection[Any], tool: str, ident: sql.Identifier) -> bool:
    where = {
        "golang-migrate": "version >= 0",
        "goose": "version_id <> 0",
        "flyway": "type NOT IN ('SCHEMA')",
    }.get(tool, "true")
    query = sql.SQL(f"SELECT EXISTS (SELECT FROM {{}} WHERE {where})").format(ident)
    row = conn.execute(query).fetchone()
    return bool(row and row[0])
