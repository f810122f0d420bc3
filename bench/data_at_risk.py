"""Benchmark 6, data at risk: a rollback preview of ``DROP TABLE`` on a big table.

One table of 10 million rows (200,000 with ``--smoke``; ``BENCH_DATA_AT_RISK_ROWS`` sets
another size for a one-off run), created by version 1 and filled after
it was applied; version 2's down script drops the table and a DELETE takes a tenth of it. The
baseline is a bare ``SELECT count(*)`` of the table (what on-call would type by hand), run in
the same script on the same cluster. Cases, each through ``patcher.app.commands.execute`` like the
Lambda: the rollback preview with the default budget (each count at most
``count_timeout_ms``, all at most ``count_budget_ms``; past that, statistics marked
``estimated``), the same preview with a budget big enough to count exactly, and the verified
preview (the down script run in a rolled-back transaction, exact). The cluster runs no
autovacuum and each round starts with an untimed ``VACUUM``, so every case meets the same table
(all visible); the default preview and the bare count are also timed first on the table as the
fill left it (not vacuumed), the state the cases met until 2026-12-07. Target (SPEC section 4):
the default preview answers within its budget, and says ``estimated`` when it had to.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.common import Settings, Table, cluster, database, median, ratio, timed

UP = "CREATE TABLE events (id bigint PRIMARY KEY, kind int NOT NULL, payload text);\n"
DOWN = "DELETE FROM events WHERE kind = 0;\nDROP TABLE events;\n"


def _preview(url: str, source: Path, verify: bool, tuning: dict[str, Any]) -> dict[str, Any]:
    from patcher.app.commands import Invocation, execute
    from patcher.app.config import Config
    from patcher.core.models import Request

    config = Config(source=str(source), database_url=url)
    invocation = Invocation(request_id="bench", conninfo=lambda: url, tuning=tuning)
    request = Request("rollback", dry_run=True, verify=verify)
    result = execute(request, config, invocation).to_dict()
    if not result["ok"]:
        raise RuntimeError(f"preview failed: {result['error']}")
    return result


def _fill(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO events SELECT g, mod(g, 10), 'payload ' || g "
            "FROM generate_series(1, %s) g",
            (rows,),
        )
        conn.execute("ANALYZE events")


def _count(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM events").fetchone()


def _no_autovacuum(url: str) -> None:
    """The bench's own cluster runs no autovacuum: its first pass over the freshly filled
    table (~45-60 s after the fill, ~17 s long) used to land among the timed runs or not."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET autovacuum = off")
        conn.execute("SELECT pg_reload_conf()")


def _vacuum(url: str) -> None:
    """Untimed, before each round: the table as autovacuum keeps a long-lived one (all
    visible). The verify case's rolled-back DELETE clears every page's all-visible bit, so
    without it only the first round's cases scanned a vacuumed table."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM events")
    _count(url)


UNVACUUMED = ("bare count(*), not vacuumed yet", "preview (default budget), not vacuumed yet")


def _add(table: Table, name: str, answer: dict[str, Any], times: list[float], base: float) -> None:
    items = answer["migrations"][0]["data_at_risk"]
    dropped = next(i for i in items if i["change"] == "drop")
    wall = median(times)
    table.add(name, wall, ratio(wall, base), dropped["rows"], dropped["estimated"], len(times))


def run(settings: Settings) -> Table:
    from patcher.engine.context import RunOptions

    rows = 200_000 if settings.smoke else 10_000_000
    rows = int(os.environ.get("BENCH_DATA_AT_RISK_ROWS", rows))  # a one-off size on a shared box
    reps = settings.reps(3)
    budget_ms = RunOptions().count_budget_ms
    table = Table(
        "data_at_risk",
        f"6. Data at risk: rollback preview of DROP TABLE on {rows:,} rows",
        ["case", "median s", "x count(*)", "rows reported", "estimated", "runs"],
    )
    exact = {"count_timeout_ms": 600_000, "count_budget_ms": 600_000}
    cases: dict[str, tuple[bool, dict[str, Any]]] = {
        "preview (default budget)": (False, {}),
        "preview, budget to count exactly": (False, exact),
        "preview with verify (exact)": (True, {}),
    }
    times: dict[str, list[float]] = {name: [] for name in ["bare count(*)", *cases, *UNVACUUMED]}
    answers: dict[str, dict[str, Any]] = {}
    with cluster(settings) as server, tempfile.TemporaryDirectory(prefix="bench-risk-") as tmp:
        source = Path(tmp)
        (source / "1_events.up.sql").write_text(UP)
        (source / "1_events.down.sql").write_text(DOWN)
        with database(server) as url:
            from patcher.app.commands import Invocation, execute
            from patcher.app.config import Config
            from patcher.core.models import Request

            config = Config(source=str(source), database_url=url)
            execute(Request("migrate"), config, Invocation(conninfo=lambda: url))
            _no_autovacuum(url)
            _fill(url, rows)
            _count(url)  # warm the cache once for every case alike
            for _ in range(reps):  # the table as the fill left it: what the cases met until now
                times[UNVACUUMED[0]].append(timed(lambda: _count(url)))
                started = time.perf_counter()
                answers[UNVACUUMED[1]] = _preview(url, source, False, {})
                times[UNVACUUMED[1]].append(time.perf_counter() - started)
            for _ in range(reps):
                _vacuum(url)
                times["bare count(*)"].append(timed(lambda: _count(url)))
                for name, (verify, tuning) in cases.items():
                    started = time.perf_counter()
                    answers[name] = _preview(url, source, verify, tuning)
                    times[name].append(time.perf_counter() - started)
    base = median(times["bare count(*)"])
    table.add("bare SELECT count(*)", base, 1.0, rows, None, reps)
    for name in cases:
        _add(table, name, answers[name], times[name], base)
    unvacuumed = median(times[UNVACUUMED[0]])
    table.add(UNVACUUMED[0], unvacuumed, 1.0, rows, None, reps)
    _add(table, UNVACUUMED[1], answers[UNVACUUMED[1]], times[UNVACUUMED[1]], unvacuumed)
    default = median(times["preview (default budget)"])
    table.target("default preview seconds (its count budget + 1 s)", default, budget_ms / 1000 + 1)
    table.notes.append(
        f"count budget {budget_ms} ms in all, {RunOptions().count_timeout_ms} ms per count; "
        "'estimated' is the planner's reltuples (ANALYZEd) when a count was cut"
    )
    table.notes.append(
        "no autovacuum; each round starts with an untimed VACUUM (all visible, as a long-lived "
        "table); the 'not vacuumed yet' rows are timed first, on the table as the fill left "
        "it (what every case measured until 2026-12-07, with autovacuum landing or not)"
    )
    table.raw = {"rows": rows, "times": times, "answers": {
        k: v["migrations"][0]["data_at_risk"] for k, v in answers.items()}}  # fmt: skip
    return table
