"""Benchmark 4, contention: many concurrent migrate invocations on one database.

Each invocation is a separate process (spawned, like separate Lambda instances: own
interpreter, own connection), fully imported and configured before a barrier releases them
all at once; each calls ``patcher.app.commands.execute`` with the default settings (lock polling
from 20 ms doubling to 500 ms). Wall time runs from the barrier to the last one finishing,
and is compared with a single invocation alone, measured the same way.
"""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import time
from collections import Counter
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import psycopg

from bench.apply import DOWN, UP
from bench.common import Settings, Table, cluster, database, median, ratio


def _worker(url: str, source: str, barrier: Barrier, out: Any, index: int) -> None:
    from patcher.app.commands import Invocation, execute
    from patcher.app.config import Config
    from patcher.core.models import Request

    config = Config(source=source, database_url=url)
    barrier.wait()
    started = time.monotonic()
    invocation = Invocation(
        request_id=f"bench-{index}", invoked_by=f"bench worker {index}", conninfo=lambda: url
    )
    result = execute(Request("migrate"), config, invocation).to_dict()
    out.put((started, time.monotonic(), result["status"], result["ok"], result["error"]))


def invoke_together(url: str, source: str, n: int) -> tuple[float, list[tuple[Any, ...]]]:
    """Start n processes, release them at once; (wall seconds, their results)."""
    ctx = mp.get_context("spawn")  # no fork: the parent holds libpq connections
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, source, barrier, out, i)) for i in range(n)]
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


def run(settings: Settings) -> Table:
    workers, pending = (4, 50) if settings.smoke else (16, 200)
    reps = settings.reps(3)
    table = Table(
        "contention",
        f"4. Contention: {workers} concurrent migrate processes, {pending} pending",
        ["case", "median s", "x alone", "statuses", "applied once", "runs"],
    )
    samples: dict[str, list[float]] = {"alone": [], "together": []}
    statuses: dict[str, Counter[str]] = {}
    with cluster(settings) as server, tempfile.TemporaryDirectory(prefix="bench-lock-") as tmp:
        for i in range(1, pending + 1):
            (Path(tmp) / f"{i:05d}_create_t_{i}.up.sql").write_text(UP.format(i=i))
            (Path(tmp) / f"{i:05d}_create_t_{i}.down.sql").write_text(DOWN.format(i=i))
        for _ in range(reps):
            for case, n in (("alone", 1), ("together", workers)):
                with database(server) as url:
                    wall, results = invoke_together(url, tmp, n)
                    statuses[case] = check(url, results, pending)
                    samples[case].append(wall)
    alone = median(samples["alone"])
    for case, n in (("alone", 1), ("together", workers)):
        m = median(samples[case])
        shown = ", ".join(f"{k} {v}" for k, v in sorted(statuses[case].items()))
        label = "1 invocation alone" if n == 1 else f"{n} invocations at once"
        table.add(label, m, ratio(m, alone), shown, f"{pending}/{pending}", reps)
    together = median(samples["together"])
    table.target(f"{workers} at once / alone", together / alone, 1.5)
    table.raw = {"samples": samples}
    return table
