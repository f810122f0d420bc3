"""Benchmark 4, contention: many concurrent migrate invocations on one database.

Each invocation is a separate process (spawned, like separate Lambda instances: own
interpreter, own connection), fully imported and configured before a barrier releases them
all at once; each calls ``patcher.app.commands.execute`` with the default settings. Wall time
runs from the barrier to the last one finishing, and is compared with a single invocation
alone, measured the same way.

The case issue 32 names is the common deploy: everything already applied, 16 at once. This
machine has 2 cores that the 16 processes share (no Lambda fleet does), so the same 16 are also
run each against its own copy of the database: the same CPU sharing with no shared lock or
history. ``one database / own databases`` isolates what contention costs; ``/ alone`` is the
issue's figure and includes the CPU sharing. The older case (200 pending: one applies, 15 wait)
is kept beside it. ``BENCH_CONTENTION_BASELINE=<git ref>`` adds the same rows for that commit's
code, interleaved with this tree's in each repetition (A/B on the same machine at once).
"""

from __future__ import annotations

import compileall
import contextlib
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import psycopg

from bench.apply import DOWN, UP
from bench.common import Settings, Table, cluster, database, median, ratio
from tests.fixtures.postgres import PgServer

ROOT = Path(__file__).resolve().parents[1]


def _worker(url: str, source: str, code: str, barrier: Barrier, out: Any, index: int) -> None:
    if code != str(ROOT):  # the baseline's patcher, not this tree's (bench.apply loaded it)
        for name in [m for m in sys.modules if m == "patcher" or m.startswith("patcher.")]:
            del sys.modules[name]
        sys.path.insert(0, code)
    from patcher.app.commands import Invocation, execute
    from patcher.app.config import Config
    from patcher.core.models import Request

    config = Config(source=source, database_url=url)
    backends = _backend_clock()
    barrier.wait()
    queued, started = _queued(), time.monotonic()
    invocation = Invocation(
        request_id=f"bench-{index}", invoked_by=f"bench worker {index}", conninfo=lambda: url
    )
    result = execute(Request("migrate"), config, invocation).to_dict()
    ended, queued = time.monotonic(), _queued() - queued
    own_cpu = ended - started - queued  # as if the invocation had a CPU of its own
    served, server_queued = backends()
    own_all = own_cpu - server_queued  # and its backend one of its own too
    out.put((started, ended, result["status"], result["ok"], result["error"], own_cpu, own_all,
             served))  # fmt: skip


def _queued() -> float:
    """Seconds this process has spent runnable but waiting for a CPU (the kernel's
    ``/proc/self/schedstat``, second field, ns): what 16 processes on 2 cores pay and 16
    Lambda execution environments, each with its own CPU, do not."""
    return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9


def _backend_clock() -> Callable[[], tuple[float, float]]:
    """From now on, each connection this process closes adds its server backend's CPU seconds
    and its seconds waiting for a CPU (its ``schedstat``: the backend was forked for that
    connection, so all of it is this invocation's); the function returns both sums."""
    import psycopg

    sums = [0.0, 0.0]
    close = psycopg.Connection.close

    def closing(self: psycopg.Connection[Any]) -> None:
        if not self.closed:
            fields = Path(f"/proc/{self.info.backend_pid}/schedstat").read_text().split()
            sums[0] += int(fields[0]) / 1e9
            sums[1] += int(fields[1]) / 1e9
        close(self)

    psycopg.Connection.close = closing  # type: ignore[method-assign]
    return lambda: (sums[0], sums[1])


def invoke_together(
    urls: Sequence[str], source: str, code: str = str(ROOT)
) -> tuple[float, list[tuple[Any, ...]]]:
    """One process per URL, released at once; (wall seconds, their results)."""
    ctx = mp.get_context("spawn")  # no fork: the parent holds libpq connections
    barrier, out = ctx.Barrier(len(urls)), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(url, source, code, barrier, out, i))
        for i, url in enumerate(urls)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    wall = max(r[1] for r in results) - min(r[0] for r in results)
    return wall, results


def check(url: str, results: list[tuple[Any, ...]], pending: int) -> Counter[str]:
    """Every version applied exactly once, no errors; the statuses seen."""
    errors = [r[4] for r in results if not r[3]]
    if errors:
        raise RuntimeError(f"{len(errors)} invocations failed: {errors[0]}")
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT version, count(*) FROM schema_migrations_log "
            "WHERE outcome = 'applied' GROUP BY version"
        ).fetchall()
        history = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
    once = sum(1 for _v, c in rows if c == 1)
    if once != pending or len(rows) != pending or not history or history[0] != pending:
        raise RuntimeError(f"applied once: {once} of {pending}; log rows {rows[:5]}...")
    return Counter(str(r[2]) for r in results)


UP_TO_DATE_MORE = 3
"""The up-to-date cases run this many times as often as the 200-pending ones (15 runs, not 5):
each takes ~20 ms alone and one run of it swings 2x on a shared machine (17-33 ms alone in the
run of 2026-12-07 13:06), which a median of 5 does not settle."""

CASES = (  # (name, invocations: 1 or the fleet, databases: "one" or "own", pending at start)
    ("up to date: 1 alone", 1, "one", False),
    ("up to date: {n} at once, one database", 0, "one", False),
    ("up to date: {n} at once, each its own database", 0, "own", False),
    ("200 pending: 1 alone", 1, "one", True),
    ("200 pending: {n} at once, one database", 0, "one", True),
)


@dataclass(frozen=True)
class Sample:
    """One measurement of a case."""

    wall: float  # from the barrier to the last invocation's end
    statuses: Counter[str]
    own_cpu: float  # the slowest invocation's seconds less its wait for a CPU
    own_all: float  # ... and less its backend's wait for one
    served: float  # the server's CPU seconds per invocation (backends, median)


def _one(server: PgServer, src: str, code: str, case: tuple[Any, ...], ready: list[str]) -> Sample:
    """One measurement of a case. ``ready``: up-to-date databases, one per fleet member (an
    up-to-date run writes nothing, so they serve every repetition)."""
    _name, count, dbs, pending = case
    count = count or len(ready)
    if pending:
        with database(server) as url:
            wall, results = invoke_together([url] * count, src, code)
            seen = check(url, results, _versions(src))
    else:
        urls = [server.dsn_for(ready[0])] * count if dbs == "one" else ready_urls(server, ready)
        wall, results = invoke_together(urls, src, code)
        for url in set(urls):  # still all applied once, nothing written by these runs
            check(url, results, _versions(src))
        seen = Counter(str(r[2]) for r in results)
    own_cpu, own_all = (max(r[i] for r in results) for i in (5, 6))
    return Sample(wall, seen, own_cpu, own_all, median([r[7] for r in results]))


def ready_urls(server: PgServer, names: list[str]) -> list[str]:
    return [server.dsn_for(name) for name in names]


def _versions(src: str) -> int:
    return len(list(Path(src).glob("*.up.sql")))


@contextlib.contextmanager
def _bytecode(cache: Path) -> Iterator[None]:
    """Workers load bytecode from one private cache, as the Lambda package ships it (issue 32
    item 1), even where ``PYTHONDONTWRITEBYTECODE`` is set: the lazy imports after the barrier
    are then not compiled from source (before 2026-12-07 they were, in every worker)."""
    saved = os.environ.get("PYTHONPYCACHEPREFIX"), sys.pycache_prefix
    os.environ["PYTHONPYCACHEPREFIX"] = sys.pycache_prefix = str(cache)
    try:
        yield
    finally:
        os.environ.pop("PYTHONPYCACHEPREFIX", None)
        if saved[0] is not None:
            os.environ["PYTHONPYCACHEPREFIX"] = saved[0]
        sys.pycache_prefix = saved[1]


def _compile(code: str) -> None:
    """Write the bytecode of that tree's patcher into the cache (spawned workers inherit
    ``-B`` from a parent started with ``PYTHONDONTWRITEBYTECODE``: they only read it)."""
    compileall.compile_dir(Path(code) / "patcher", quiet=1, workers=1)


def _baseline(ref: str, into: Path) -> str:
    """That commit's tree, for its patcher package (``git archive``)."""
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "patcher"], check=True,
                         capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(into)], input=tar, check=True)
    return str(into)


def run(settings: Settings) -> Table:
    workers, pending = (4, 50) if settings.smoke else (16, 200)
    reps = settings.reps(2 if settings.smoke else 5)
    ref = os.environ.get("BENCH_CONTENTION_BASELINE")
    table = Table(
        "contention",
        f"4. Contention: {workers} concurrent migrate processes, {pending} migrations",
        ["case", "code", "median s", "x alone", "x own dbs", "statuses", "runs"],
    )
    with (
        cluster(settings) as server,
        tempfile.TemporaryDirectory(prefix="bench-lock-") as tmp,
        _bytecode(Path(tmp) / "pycache"),
    ):
        src = Path(tmp) / "migrations"
        src.mkdir()
        for i in range(1, pending + 1):
            (src / f"{i:05d}_create_t_{i}.up.sql").write_text(UP.format(i=i))
            (src / f"{i:05d}_create_t_{i}.down.sql").write_text(DOWN.format(i=i))
        codes = {"this tree": str(ROOT)}
        if ref:
            (Path(tmp) / "base").mkdir()
            codes[f"before ({ref})"] = _baseline(ref, Path(tmp) / "base")
        applied = server.create_database()  # the up-to-date template
        invoke_together([server.dsn_for(applied)], str(src))
        ready = [applied] + [server.create_database(applied) for _ in range(workers - 1)]
        for code in codes.values():  # fills the bytecode cache (the package ships .pyc)
            _compile(code)
            invoke_together([server.dsn_for(applied)], str(src), code)
        samples: dict[str, list[float]] = {}
        statuses: dict[str, Counter[str]] = {}
        for rep in range(reps * UP_TO_DATE_MORE):
            for case in CASES:  # interleaved: each repetition runs every case with each code
                if case[3] and rep % UP_TO_DATE_MORE:  # 200 pending: one repetition in three
                    continue
                for label, code in codes.items():
                    key = f"{case[0]}|{label}"
                    one = _one(server, str(src), code, case, ready)
                    for suffix, value in (
                        ("", one.wall),
                        ("|own cpu", one.own_cpu),
                        ("|own cpus", one.own_all),
                        ("|served", one.served),
                    ):
                        samples.setdefault(key + suffix, []).append(value)  # fmt: skip
                    statuses[key] = one.statuses
    _report(table, samples, statuses, codes, workers, pending)
    table.raw = {"samples": samples, "load": os.getloadavg(), "baseline": ref}
    return table


def _report(
    table: Table,
    samples: dict[str, list[float]],
    statuses: dict[str, Counter[str]],
    codes: dict[str, str],
    n: int,
    pending: int,
) -> None:
    def m(case: int, code: str) -> float:
        return median(samples[f"{CASES[case][0]}|{code}"])

    for label in codes:
        for i, (name, _c, _d, is_pending) in enumerate(CASES):
            alone, dbs = m(3 if is_pending else 0, label), m(2, label) if i == 1 else None
            seen = ", ".join(f"{k} {v}" for k, v in sorted(statuses[f"{name}|{label}"].items()))
            value = m(i, label)
            table.add(name.format(n=n).replace("200", str(pending)), label, value,
                      ratio(value, alone), dbs and ratio(value, dbs), seen,
                      len(samples[f"{name}|{label}"]))  # fmt: skip
    for label in codes:
        _own_rows(table, samples, label, n, pending)

    def own(case: int, kind: str) -> float:
        return median(samples[f"{CASES[case][0]}|this tree|{kind}"])

    table.target(f"up to date: {n} at once / alone, each and its backend with its own CPU "
                 "(issue 32)", own(1, "own cpus") / own(0, "own cpus"), 1.2)  # fmt: skip
    table.target(f"{pending} pending: {n} at once / alone, each and its backend with its own "
                 "CPU", own(4, "own cpus") / own(3, "own cpus"), 1.5)  # fmt: skip
    table.target(f"up to date: {n} at once / alone, each with its own CPU (old row)",
                 own(1, "own cpu") / own(0, "own cpu"), 1.2)  # fmt: skip
    table.target(f"up to date: {n} on one database / {n} each on its own (contention)",
                 m(1, "this tree") / m(2, "this tree"), 1.2)  # fmt: skip
    served = own(0, "served") * 1000
    table.notes.append(
        "'each with its own CPU': the slowest invocation's seconds less the time it waited "
        f"for a CPU (/proc/self/schedstat), as {n} Lambda execution environments run; 'and "
        "its backend': less its server backend's wait for a CPU too (the backend's schedstat "
        "when the invocation closes it), as a writer with a CPU free for each session would "
        f"serve them. Here {n} processes and {n} backends share {os.cpu_count()} cores"
    )
    table.notes.append(
        f"the server's CPU per up-to-date invocation (its backend: start, probe, history "
        f"read): {served:.1f} ms alone, {own(1, 'served') * 1000:.1f} ms among {n}; {n} "
        f"arriving at once on a writer with 2 vCPUs queue up to {served * n / 2:.0f} ms "
        "for it, which no change on the client can remove"
    )
    table.notes.append(
        f"{os.cpu_count()} cores shared by {n} processes: the own-databases row has the same "
        "CPU sharing and no shared lock, so 'one database / own databases' is what contention "
        "costs; '/ alone' adds the CPU sharing no Lambda fleet has"
    )


def _own_rows(
    table: Table, samples: dict[str, list[float]], label: str, n: int, pending: int
) -> None:
    """The slowest invocation with a CPU of its own, then with its backend's wait out too."""
    kinds = (("own cpu", "each with its own CPU", "slowest invocation less its CPU wait"),
             ("own cpus", "each and its backend with its own CPU",
              "slowest less its and its backend's CPU wait"))  # fmt: skip
    for kind, what, how in kinds:
        for alone, together, case in ((0, 1, "up to date"), (3, 4, f"{pending} pending")):
            key = f"{CASES[together][0]}|{label}|{kind}"
            value, base = median(samples[key]), median(samples[f"{CASES[alone][0]}|{label}|{kind}"])
            table.add(f"{case}: {n} at once, one database, {what}", label, value,
                      ratio(value, base), None, how, len(samples[key]))  # fmt: skip
