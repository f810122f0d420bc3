"""What every benchmark shares: a throwaway cluster, timing, one table, the JSON record."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.fixtures import postgres as pgserver
from tests.fixtures.postgres import PgServer

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# fsync off (the tests' settings, and the FIELD-NOTES floor): the benchmarks measure each tool's
# own overhead; with fsync on every tool pays the same flush per commit, and the disk's noise
# hides the difference. ``--fsync`` turns it on for a realistic-durability run.
FAST_SETTINGS = pgserver.SERVER_SETTINGS
DURABLE_SETTINGS = ("fsync=on", "synchronous_commit=on", "full_page_writes=on",
                    "max_connections=200")  # fmt: skip
# Without fsync the disk still costs: every CREATE TABLE makes ~5 files, and on this VM's ext4
# the same psql run at N = 2,000 took 3.2-9.7 s from /tmp and 2.3-3.5 s from /dev/shm in one
# hour. That noise is the disk's, paid alike by every tool; a memory-backed data directory
# leaves the tools' own work to compare. ``--fsync`` (durability) and ``--disk`` keep the disk.
MEMORY_FS = Path("/dev/shm")
MEMORY_FS_NEEDS = 4 << 30  # the largest case (10 million rows, and its WAL) with room to spare


@dataclass(frozen=True)
class Settings:
    """Run-wide choices: smoke or full sizes, durability, repetitions."""

    smoke: bool = False
    fsync: bool = False
    disk: bool = False  # the cluster's data directory on disk even without --fsync
    repeat: int | None = None  # None: each benchmark's default

    def reps(self, default: int) -> int:
        """How many runs to take the median of: ``--repeat`` or the benchmark's default."""
        return self.repeat or default

    @functools.cached_property
    def cluster_parent(self) -> Path | None:
        """Where throwaway clusters live: memory (``/dev/shm``) when it is writable and roomy
        (a container's default 64 MB is not), else the temp dir. Decided once per run, so the
        JSON records where the clusters were, not what /dev/shm holds by then."""
        if self.fsync or self.disk or not os.access(MEMORY_FS, os.W_OK | os.X_OK):
            return None
        fs = os.statvfs(MEMORY_FS)
        return MEMORY_FS if fs.f_bavail * fs.f_frsize >= MEMORY_FS_NEEDS else None


@contextlib.contextmanager
def cluster(settings: Settings) -> Iterator[PgServer]:
    """A throwaway local cluster (initdb as ``postgres`` when root), stopped afterwards."""
    bin_dir = pgserver.find_bin_dir(os.environ.get("PATH", ""))
    if bin_dir is None:
        raise SystemExit(f"bench: no PostgreSQL server binaries. {pgserver.INSTALL_HINT}")
    run_as = pgserver.CLUSTER_OS_USER if os.geteuid() == 0 else None
    saved = pgserver.SERVER_SETTINGS
    pgserver.SERVER_SETTINGS = DURABLE_SETTINGS if settings.fsync else FAST_SETTINGS
    try:
        server = pgserver.start_local_cluster(
            bin_dir, run_as=run_as, parent=settings.cluster_parent
        )
    finally:
        pgserver.SERVER_SETTINGS = saved
    try:
        yield server
    finally:
        server.stop()


def bytecode_envs(base: dict[str, str], cache: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Environments that load every module from one private bytecode cache
    (``PYTHONPYCACHEPREFIX``), as pip leaves installed packages: (reading, writing). Run once
    with the writing one to fill the cache; time with the reading one."""
    writing = {k: v for k, v in base.items() if k != "PYTHONDONTWRITEBYTECODE"}
    writing["PYTHONPYCACHEPREFIX"] = str(cache)
    return dict(writing, PYTHONDONTWRITEBYTECODE="1"), writing


@contextlib.contextmanager
def database(server: PgServer, template: str = "template0") -> Iterator[str]:
    """A fresh database's URL, dropped afterwards."""
    name = server.create_database(template=template)
    try:
        yield server.dsn_for(name)
    finally:
        server.drop_database(name)


def timed(action: Callable[[], object]) -> float:
    """Seconds ``action`` took."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def quiet_stdout() -> contextlib.redirect_stdout[io.StringIO]:
    """Swallow what the CLI prints (the JSON of a 2,000-migration run is megabytes)."""
    return contextlib.redirect_stdout(io.StringIO())


@dataclass
class Table:
    """One benchmark's table: rows of figures, printed aligned and stored as JSON."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def add(self, *cells: Any) -> None:
        self.rows.append(list(cells))

    def target(self, what: str, value: float, limit: float, *, below: bool = True) -> None:
        met = value <= limit if below else value >= limit
        self.targets.append({"target": what, "value": round(value, 3), "limit": limit,
                             "met": met})  # fmt: skip

    def render(self) -> str:
        cells = [self.columns] + [[_fmt(c) for c in row] for row in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]

        def line(r: list[str]) -> str:
            pairs = enumerate(zip(r, widths, strict=True))
            return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in pairs)

        out = [f"== {self.title}", line(cells[0]), line(["-" * w for w in widths])]
        out += [line(r) for r in cells[1:]]
        for t in self.targets:
            verdict = "MET" if t["met"] else "MISSED"
            out.append(f"target: {t['target']}: {t['value']} (limit {t['limit']}) {verdict}")
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)

    def save(self, settings: Settings) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        mode = "smoke" if settings.smoke else "full"
        record = {
            "benchmark": self.name, "title": self.title, "mode": mode, "at": stamp,
            "fsync": settings.fsync, "cluster_dir": str(settings.cluster_parent or "temp dir"),
            "host": platform.node(), "columns": self.columns,
            "rows": self.rows, "targets": self.targets, "notes": self.notes, "raw": self.raw,
        }  # fmt: skip
        path = RESULTS / f"{self.name}-{mode}-{stamp}.json"
        path.write_text(json.dumps(record, indent=2, default=str) + "\n")
        return path


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return "" if value is None else str(value)


def ratio(value: float, base: float) -> float | None:
    return round(value / base, 2) if base > 0 else None


def psql_batched(units: Sequence[str], per_message: int | None = None) -> str:
    """A psql script that sends ``units`` (each a script of whole statements, e.g. ``BEGIN;
    ...; COMMIT;``) ``per_message`` to a simple-query message (default: as many as
    StackFlowPatcher puts in one, ``MAX_ITEMS``). A plain psql script sends each statement as
    its own round trip; statements joined with psql's ``\\;`` go out together at the next
    plain ``;``. Every unit must be allowed in a multi-statement message (no ``CREATE INDEX
    CONCURRENTLY``, no ``VACUUM``)."""
    from patcher.engine.batched_steps import MAX_ITEMS
    from patcher.sql.lexer import split_statements  # the splitter that follows psql's rules

    step = per_message or MAX_ITEMS
    out: list[str] = []
    for first in range(0, len(units), step):
        texts = [s.text for u in units[first : first + step] for s in split_statements(u)]
        for i, text in enumerate(texts):
            # A statement may end in a line comment: its separator then goes on the next line.
            gap = "\n" if "--" in text[text.rfind("\n") + 1 :] else " "
            end = ";" if i == len(texts) - 1 else "\\;"
            out.append(f"{text}{gap}{end}\n")
    return "".join(out)


def count_rows(url: str, table: str) -> int:
    """``count(*)`` of ``table`` (a bench's check that a run applied everything)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else -1
