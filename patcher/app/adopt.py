"""``patcher adopt --from TOOL``: take over another tool's history (SPEC section 10).

Reads the tool's history table (the ``ForeignHistory`` port, ``patcher/engine/ports.py``),
checks it against the source, and writes this tool's history for the same versions (checksums
of the current files), under the run's advisory lock (waited for as a run waits:
``engine/lock_wait.py``) and in one transaction that also holds the other table in SHARE mode
(the other tool cannot write meanwhile). Refused, writing nothing: a dirty or failed state, a
recorded version with no file, a history of ours that is not empty, the other table at the very
name of ours. The other table is left in place; the result says how to drop it.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from patcher.core.checksum import checksum
from patcher.core.errors import ConfigError, DirtyDatabase, InvalidRequest, MissingMigration
from patcher.core.foreign_tools import DEFAULT_TABLES, FIX, ForeignState
from patcher.core.models import Catalog, HistoryChange, Migration, Request, StepKind
from patcher.engine.context import Deadline, EventSink, RunContext, RunOptions, no_events
from patcher.engine.lock_wait import acquire_lock
from patcher.engine.outcome import Outcome, ResultEntry
from patcher.engine.ports import MigrationBackend, foreign_port
from patcher.sources.base import MigrationSource
from patcher.sources.catalog import build_catalog

LAYOUT_OF = {"golang-migrate": "golang-migrate", "sqlx": "golang-migrate"}  # else the tool's
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


@dataclass(frozen=True)
class Adoption:
    """What an adoption writes, and what the result says beside it."""

    changes: list[HistoryChange]
    warnings: list[str]


def adopt(
    request: Request,
    source: MigrationSource,
    backend: MigrationBackend,
    options: RunOptions | None = None,
    *,
    time_left_ms: Callable[[], int] | None = None,
    events: EventSink | None = None,
) -> Outcome:
    """Carry out (or, with dry_run, plan) one adoption; raises PatcherError when refused."""
    tool, foreign = request.adopt_from or "", foreign_port(backend)
    # Unqualified, the table is where the tool itself looks: the session's current schema.
    schema, table = foreign_table(
        request.adopt_table or DEFAULT_TABLES[tool], foreign.current_schema()
    )
    if (schema, table) == (backend.schema, backend.table):
        raise name_clash(tool, schema, table)
    if request.dry_run:
        state = foreign.read_foreign(tool, schema, table)  # refused before the source is
        plan = _plan(state, build_catalog(source.list()), backend, source)
        return _outcome(plan, "planned")
    opts = options or RunOptions()
    deadline = Deadline(time_left_ms, opts.time_margin_seconds)
    acquire_lock(RunContext(request, backend, opts, deadline, events or no_events))
    try:
        backend.check_writable()
        with foreign.holding_foreign(tool, schema, table) as state:
            plan = _plan(state, build_catalog(source.list()), backend, source)
            backend.ensure_tables()
            backend.record(plan.changes)
    finally:
        backend.unlock()
    return _outcome(plan, "applied")


def foreign_table(name: str, default_schema: str) -> tuple[str, str]:
    """``NAME`` or ``SCHEMA.NAME`` as (schema, table), or InvalidRequest."""
    parts = name.split(".")
    if len(parts) > 2 or not all(_IDENT.match(p) for p in parts):
        raise InvalidRequest(
            f"table {name[:80]!r} is not a table name: give NAME or SCHEMA.NAME (letters, "
            "digits, _ and $, at most 63 characters each)"
        )
    return (default_schema, parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def name_clash(tool: str, schema: str, table: str) -> ConfigError:
    return ConfigError(
        f"{tool}'s history is {schema}.{table}, the very table StackFlowPatcher would use "
        "(PATCHER_TABLE defaults to schema_migrations). Set PATCHER_TABLE to another name, "
        "e.g. PATCHER_TABLE=patcher_migrations, for this adopt and every later run, and adopt "
        "again; nothing was written"
    )


def _plan(
    foreign: ForeignState, catalog: Catalog, backend: MigrationBackend, source: MigrationSource
) -> Adoption:
    tool = foreign.tool
    if foreign.problems:
        raise DirtyDatabase(
            f"{tool}'s history {foreign.table} is not clean: {'; '.join(foreign.problems)}. "
            f"{FIX.get(tool, 'Fix it with ' + tool)}; then adopt again. Nothing was written",
            problems=foreign.problems,
        )
    ours = backend.read_history()
    if ours:
        raise InvalidRequest(
            f"StackFlowPatcher's history {backend.schema}.{backend.table} already has "
            f"{len(ours)} version(s), the newest {ours[-1].version}: adopt writes only into an "
            "empty history. If this database was adopted already, run migrate"
        )
    files, covered = _files(foreign, catalog)
    missing = sorted(v for v in foreign.applied if v not in files)
    if missing:
        raise MissingMigration(
            f"{tool} records version(s) {', '.join(map(str, missing[:20]))} in {foreign.table} "
            f"and the source {source.describe()} has no file for them: restore those files (or "
            "point PATCHER_SOURCE / --source at the directory the tool used) and adopt again",
            versions=missing[:20],
        )
    top = foreign.up_to or 0
    versions = sorted(v for v in foreign.applied | {v for v in files if v <= top} if v > covered)
    ups = [files[v].up for v in versions]
    sums = {obj.key: data for obj, data in source.read_many(ups)}
    changes = [
        HistoryChange(v, files[v].description, "up", checksum(sums[files[v].up.key]),
                      files[v].up.fingerprint, StepKind.ADOPT)
        for v in versions
    ]  # fmt: skip
    changes += _repeatables(foreign, catalog, source)
    return Adoption(changes, _warnings(foreign, catalog, versions, sums, files))


def _files(foreign: ForeignState, catalog: Catalog) -> tuple[dict[int, Migration], int]:
    """The file of each version, and the versions a Flyway SQL_BASELINE row covers (below
    it): that version is its B file, as ``migrate`` reads it (``engine/baselines.py``)."""
    files = catalog.by_version()
    if foreign.baseline is None:
        return files, 0
    base = {b.version: b for b in catalog.baselines}
    if foreign.baseline in base:
        files[foreign.baseline] = base[foreign.baseline]
    else:  # its V file would not cover the versions below: the B file must come back
        files.pop(foreign.baseline, None)
    return files, foreign.baseline - 1


def _repeatables(
    foreign: ForeignState, catalog: Catalog, source: MigrationSource
) -> list[HistoryChange]:
    """Flyway repeatables whose current file has the CRC-32 Flyway last applied: recorded as
    applied (so they do not run again); the others run at the next migrate."""
    known = [r for r in catalog.repeatables if r.obj.name in foreign.repeatables]
    return [
        HistoryChange(None, rep.description, "up", checksum(data), obj.fingerprint,
                      StepKind.REPEATABLE)
        for rep, (obj, data) in zip(known, source.read_many(r.obj for r in known), strict=True)
        if flyway_checksum(data) == foreign.repeatables[obj.name]
    ]  # fmt: skip


def flyway_checksum(data: bytes) -> int:
    """Flyway's checksum of a script (ChecksumCalculator): CRC-32 over its UTF-8 lines without
    line ends, a leading BOM dropped, as a signed 32-bit integer."""
    crc = 0
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    for line in re.split(r"\r\n|\r|\n", text):  # Java's readLine; "" adds nothing
        crc = zlib.crc32(line.encode("utf-8"), crc)
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def _warnings(
    foreign: ForeignState,
    catalog: Catalog,
    versions: list[int],
    sums: dict[str, bytes],
    files: dict[int, Migration],
) -> list[str]:
    tool, newest = foreign.tool, max(versions, default=0)
    warnings = [
        f"{tool}'s table {foreign.table} was left in place and is no longer read; once {tool} "
        f"no longer runs against this database, drop it: DROP TABLE {foreign.table};"
    ]
    floor = foreign.baseline or 0  # below a Flyway SQL_BASELINE: covered, not gaps
    gaps = [
        m.version
        for m in catalog.migrations
        if floor <= m.version < newest and m.version not in versions
    ]
    if gaps:
        warnings.append(
            f"version(s) {', '.join(map(str, gaps[:20]))} have files but {tool} never applied "
            "them, below its newest version: migrate will refuse them as out of order until "
            "they are renumbered above it or applied by hand"
        )
    for v, digest in sorted(foreign.sqlx_checksums.items()):
        data = sums.get(files[v].up.key) if v in files else None
        if data is not None and hashlib.sha384(data).digest() != digest:
            warnings.append(f"version {v}: the file changed since sqlx applied it")
    return warnings


def _outcome(plan: Adoption, state: str) -> Outcome:
    entries = [
        ResultEntry(c.version, c.description, "up", state, c.checksum,
                    change=c.kind.change_text("up") if c.version is not None else
                    "repeatable: recorded as applied, Flyway ran this very file",
                    repeatable=True if c.version is None else None)
        for c in plan.changes
    ]  # fmt: skip
    status = state if plan.changes else "up_to_date"
    current = max((c.version for c in plan.changes if c.version is not None), default=None)
    return Outcome(
        status=status,
        entries=entries,
        current_version=current,
        warnings=plan.warnings,
        history_read=True,
    )
