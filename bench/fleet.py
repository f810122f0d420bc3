"""Benchmark 6, fleets: one migration rolled across N databases by the state machine.

The definition of template.yaml runs in moto's Step Functions interpreter with the real handler
(the harness of tests/e2e/sfnkit.py: moto's Lambda invoke hooked to ``lambda_handler``), each
database a real PostgreSQL database with its own Secrets Manager secret. Cases: the fleet of
one (the canary alone) and the fleet of N (canary, then the rest at max_concurrency 10). Wall
time runs from start_execution to the end; the ratio to one database is expected well under N
because the map runs targets in parallel. Invocations of the patcher function are counted
against the least possible (one per database); the summary function's (one per wave: it reads
the ResultWriter files, not a database) are not.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bench.common import Settings, Table, cluster, median, quiet_stdout, ratio

MIGRATIONS = {
    f"{v:04d}_t{v}.up.sql": f"CREATE TABLE t{v} (id int PRIMARY KEY);\n" for v in range(1, 6)
}


@contextlib.contextmanager
def world(server: Any, n: int) -> Iterator[tuple[Any, Any, list[str]]]:
    from tests.e2e.sfnkit import sfn_world

    patch = pytest.MonkeyPatch()
    gen = sfn_world(patch, "http://127.0.0.1:9")  # no long-run task here: no server needed
    aws = next(gen)
    created = [server.create_database() for _ in range(n)]
    try:
        names = [f"db{i:02d}" for i in range(n)]
        targets = {
            name: aws.create_secret(f"bench/{name}", server.dsn_for(db))
            for name, db in zip(names, created, strict=True)
        }
        patch.setenv("PATCHER_TARGETS", json.dumps(targets))
        for name, text in MIGRATIONS.items():
            aws.put(name, text)
        yield aws, aws.state_machine(targets), names
    finally:
        next(gen, None)
        patch.undo()
        for db in created:
            server.drop_database(db)


def one_run(server: Any, n: int) -> tuple[float, int, str]:
    with world(server, n) as (aws, machine, names), quiet_stdout():
        started = time.perf_counter()
        execution = machine.run({"action": "migrate", "databases": names}, timeout=900)
        wall = time.perf_counter() - started
    if execution.status != "SUCCEEDED":
        raise SystemExit(f"bench fleet: the execution {execution.status}: {execution.cause}")
    return wall, len(aws.invocations), execution.status


def run(settings: Settings) -> Table:
    n = 4 if settings.smoke else 20
    reps = settings.reps(1 if settings.smoke else 3)
    table = Table(
        "fleet",
        f"6. Fleets: {len(MIGRATIONS)} migrations on {n} databases through the state machine",
        ["case", "median s", "x one database", "invocations", "least possible", "runs"],
    )
    samples: dict[int, list[float]] = {1: [], n: []}
    calls: dict[int, int] = {}
    with cluster(settings) as server:
        for _ in range(reps):
            for size in (1, n):
                wall, invocations, _ = one_run(server, size)
                samples[size].append(wall)
                calls[size] = invocations
    one = median(samples[1])
    for size in (1, n):
        m = median(samples[size])
        label = "one database" if size == 1 else f"fleet of {size} (max_concurrency 10)"
        table.add(label, m, ratio(m, one), calls[size], size, reps)
    table.target(f"fleet of {n} / one database", median(samples[n]) / one, n / 2)
    table.target("invocations / least possible", calls[n] / n, 1.0)
    table.raw = {"samples": {str(k): v for k, v in samples.items()}, "invocations": calls}
    return table
