"""Other tools' history tables: their names, their columns, and what their rows mean.

The vocabulary ``patcher adopt`` and the "another tool's history" check share, and every
backend's ``ForeignHistory`` port (``patcher/engine/ports.py``) reads with: a backend fetches a
tool's rows (``ROWS``: the columns, in the order given) and ``interpret`` says what they mean.
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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from patcher.core.errors import ConfigError

TOOLS = ("golang-migrate", "dbmate", "goose", "sqlx", "flyway")
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
ROWS: dict[str, tuple[tuple[str, ...], str]] = {  # the columns read, and the order of the rows
    "golang-migrate": (("version", "dirty"), "version"),
    "dbmate": (("version",), "version"),
    "goose": (("version_id", "is_applied"), "id"),
    "sqlx": (("version", "success", "checksum"), "version"),
    "flyway": (("version", "type", "script", "checksum", "success"), "installed_rank"),
}
FIX = {  # what to do, in the tool itself, about a dirty or failed state
    "golang-migrate": "fix the database by hand, then 'migrate force VERSION' to the version it "
    "is really at",
    "sqlx": "fix the database by hand, then delete the row with success = false (or rerun "
    "'sqlx migrate run' once the script is fixed)",
    "flyway": "fix the database by hand, then run 'flyway repair' to remove the failed rows",
}


@dataclass
class ForeignState:
    """What another tool's table says: applied versions and what blocks adopting them."""

    tool: str
    table: str  # schema-qualified, quoted as SQL
    applied: set[int] = field(default_factory=set)
    up_to: int | None = None  # golang-migrate's one version / Flyway's baseline: all below too
    baseline: int | None = None  # Flyway's SQL_BASELINE row: a B file ran; all below covered
    problems: list[str] = field(default_factory=list)
    repeatables: dict[str, int] = field(default_factory=dict)  # Flyway: script -> CRC-32
    sqlx_checksums: dict[int, bytes] = field(default_factory=dict)


def check_columns(tool: str, schema: str, table: str, columns: set[str]) -> None:
    """Raise ConfigError when the table is missing (no columns) or is not ``tool``'s."""
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


def _guess(columns: set[str]) -> str:
    for tool, expected in COLUMNS.items():
        if expected == columns or (tool != "dbmate" and expected <= columns):
            return f" (it looks like {tool}'s: use --from {tool})"
    return ""


def made_by(tool: str, table: str, columns: set[str]) -> bool:
    """Whether ``table`` with ``columns`` is ``tool``'s history under its default name."""
    if DEFAULT_TABLES[tool] != table or not COLUMNS[tool] <= columns:
        return False
    if tool == "golang-migrate":
        return columns == COLUMNS[tool]  # ours has version and dirty too, and more
    return tool != "dbmate" or columns == COLUMNS[tool]


def interpret(tool: str, shown: str, rows: Sequence[Sequence[Any]]) -> ForeignState:
    """What ``tool``'s rows (``ROWS[tool]``: those columns, in that order) say."""
    found = ForeignState(tool, shown)
    _READERS[tool](rows, found)
    return found


def _golang_migrate(rows: Sequence[Sequence[Any]], out: ForeignState) -> None:
    if len(rows) > 1:
        out.problems.append(f"{out.table} has {len(rows)} rows; golang-migrate keeps exactly one")
    for version, dirty in rows:
        if dirty:
            out.problems.append(f"golang-migrate marks version {version} dirty (a failed run)")
        if version >= 0:  # -1: no version (golang-migrate's NilVersion)
            out.up_to = max(out.up_to or 0, int(version))
            out.applied.add(int(version))


def _dbmate(rows: Sequence[Sequence[Any]], out: ForeignState) -> None:
    for (version,) in rows:
        if not str(version).isdigit() or len(str(version)) > 18:
            out.problems.append(f"dbmate version {str(version)[:40]!r} is not 1 to 18 digits")
        else:
            out.applied.add(int(version))


def _goose(rows: Sequence[Sequence[Any]], out: ForeignState) -> None:
    latest = {version: is_applied for version, is_applied in rows}  # by id: the last one wins
    for version, is_applied in sorted(latest.items()):
        if version != 0 and is_applied:  # goose's own marker row is version 0
            out.applied.add(int(version))


def _sqlx(rows: Sequence[Sequence[Any]], out: ForeignState) -> None:
    for version, success, digest in rows:
        if not success:
            out.problems.append(f"sqlx marks version {version} failed (success = false)")
            continue
        out.applied.add(int(version))
        out.sqlx_checksums[int(version)] = bytes(digest)


def _flyway(rows: Sequence[Sequence[Any]], out: ForeignState) -> None:
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


_READERS: dict[str, Callable[[Sequence[Sequence[Any]], ForeignState], None]] = {
    "golang-migrate": _golang_migrate,
    "dbmate": _dbmate,
    "goose": _goose,
    "sqlx": _sqlx,
    "flyway": _flyway,
}
