"""Benchmark 6, fleets: one migration rolled across N databases by the state machine.

The definition of template.yaml runs in moto's Step Functions interpreter with the real handler
(the harness of tests/e2e/sfnkit.py: moto's Lambda invoke hooked to ``lambda_handler``), each
database a real PostgreSQL database with its own Secrets Manager secret. Cases: the fleet of
one (the canary alone) and the fleet of N (canary, then the rest at max_concurrency 10). Wall
time runs from start_execution to the end; the ratio to one database is expected well under N
because the map runs targets in parallel. Invocations of the patcher function are counted over
every run against the least possible (one per database per run); the summary function's (one
per wave: it reads the ResultWriter files, not a database) are not. The CPU each handler call
takes in its thread is summed per run: all of them share this process, so that sum is paid
serially here where AWS runs the containers side by side. The rest of this process's CPU over
the execution (``time.process_time``: moto's interpreter, the AWS services it calls, this
bench's poll of describe_execution) is its own column, and so is PostgreSQL's (the postmaster's
and its backends', from /proc): what grows with the fleet, and whose it is. One untimed run
first takes the bench process's own first imports out of the "one database" figure. Each case
runs twice, interleaved: in this process as above (the heap frozen from the execution's start:
``full_collections``), and with a process per invocation as AWS runs the function
(bench/fleet_procs.py), each target met or missed on its own.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.common import Settings, Table, cluster, median, quiet_stdout, ratio
from bench.fleet_procs import environments

CONCURRENCY = 10  # the Wave map's MaxConcurrency in statemachine/patcher.asl.json
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


@contextlib.contextmanager
def full_collections(frozen: bool) -> Iterator[list[float]]:
    """The seconds each full (generation 2) garbage collection of this process takes. Each
    walks the whole heap: moto, the parsed definitions, what earlier runs left (~400,000
    objects, 0.2-1.25 s each here); the fleet's allocations set off 1-3 a run, one database's
    one now and then (when the collector's counters are due). A Lambda container's heap is the
    handler's alone. ``frozen``: the heap as it
    stands is moved out of the collector's reach first (``gc.freeze``) and back after."""
    spent: list[float] = []
    started: list[float] = []

    def watch(phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            spent.append(time.perf_counter() - started.pop())

    if frozen:
        gc.freeze()
    gc.callbacks.append(watch)
    try:
        yield spent
    finally:
        gc.callbacks.remove(watch)
        if frozen:
            gc.unfreeze()


@contextlib.contextmanager
def handler_cpu() -> Iterator[list[float]]:
    """The CPU seconds each ``lambda_handler`` call took in its own thread (the hook of
    tests/e2e/sfnkit.py imports the handler at each call, so it calls this wrapper)."""
    from patcher.aws import handler

    spent: list[float] = []
    original = handler.lambda_handler

    def timed_handler(event: Any, context: Any) -> Any:
        started = time.thread_time()
        try:
            return original(event, context)
        finally:
            spent.append(time.thread_time() - started)

    handler.lambda_handler = timed_handler  # type: ignore[assignment]
    try:
        yield spent
    finally:
        handler.lambda_handler = original  # type: ignore[assignment]


def server_cpu(server: Any) -> float:
    """CPU seconds the cluster has used: the postmaster's own, its reaped children's (every
    backend of a closed connection) and its live children's, from /proc (0.0 where there is
    no /proc or the postmaster is another user's)."""
    try:
        data = server.admin().execute("SHOW data_directory").fetchone()[0]
        postmaster = int((Path(data) / "postmaster.pid").read_text().split()[0])
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            pid, ppid = int(stat.parent.name), int(fields[1])
            if pid == postmaster:  # utime, stime, cutime, cstime
                total += sum(int(f) for f in fields[11:15]) / tick
            elif ppid == postmaster:
                total += sum(int(f) for f in fields[11:13]) / tick
        return total
    except (OSError, ValueError, IndexError, TypeError):
        return 0.0


@dataclass
class Sample:
    wall: float
    invocations: int
    handler_cpu: float
    process_cpu: float = 0.0  # this whole process over the execution, handlers included
    server_cpu: float = 0.0  # PostgreSQL's over the execution
    aws_cpu: float | None = None  # the moto server process's (a process per invocation only)
    full_gc: float = 0.0  # this process's full garbage collections over the execution


def one_run(
    server: Any, n: int, procs: tuple[Any, Any] | None = None, *, frozen: bool = False
) -> Sample:
    """One execution on ``n`` new databases: in this process, or with ``procs`` (the moto
    server and the execution environments of bench/fleet_procs.py) a process per invocation;
    ``frozen``: the heap frozen from the execution's start (``full_collections``)."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(quiet_stdout())  # first: the handler's logger binds to it
        if procs is None:
            aws, machine, names = stack.enter_context(world(server, n))
            spent = stack.enter_context(handler_cpu())
        else:
            from bench.fleet_procs import world as procs_world

            aws, machine, names, spent = stack.enter_context(procs_world(server, n, *procs))
        pg_before, cpu_before = server_cpu(server), time.process_time()
        aws_before = procs[0].cpu() if procs else 0.0
        collections = stack.enter_context(full_collections(frozen))
        started = time.perf_counter()
        execution = machine.run({"action": "migrate", "databases": names}, timeout=900)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        pg = server_cpu(server) - pg_before
        aws_cpu = procs[0].cpu() - aws_before if procs else None
    if execution.status != "SUCCEEDED":
        raise SystemExit(f"bench fleet: the execution {execution.status}: {execution.cause}")
    handler = sum(spent)
    process_cpu = cpu + (handler if procs else 0.0)
    return Sample(wall, len(aws.invocations), handler, process_cpu, pg, aws_cpu, sum(collections))


def add_rows(table: Table, mode: str, samples: dict[int, list[Sample]], n: int) -> None:
    """The one-database and fleet rows of one way of running the invocations."""
    one = median([s.wall for s in samples[1]])
    for size in (1, n):
        got = samples[size]
        m = median([s.wall for s in got])
        label = "one database" if size == 1 else f"fleet of {size} (max_concurrency {CONCURRENCY})"
        calls = sum(s.invocations for s in got)
        cpu = median([s.handler_cpu for s in got])
        rest = median([s.process_cpu - s.handler_cpu for s in got])
        pg = median([s.server_cpu for s in got])
        moto = [s.aws_cpu for s in got if s.aws_cpu is not None]
        full_gc = median([s.full_gc for s in got])
        table.add(f"{label}, {mode}", m, ratio(m, one), cpu, rest, full_gc, pg,
                  median(moto) if moto else None, calls, size * len(got), len(got))  # fmt: skip


def run(settings: Settings) -> Table:
    n = 4 if settings.smoke else 20
    reps = settings.reps(1 if settings.smoke else 5)
    table = Table(
        "fleet",
        f"6. Fleets: {len(MIGRATIONS)} migrations on {n} databases through the state machine",
        ["case", "median s", "x one database", "handler CPU s", "rest of process CPU s",
         "full GC s", "PostgreSQL CPU s", "moto server CPU s", "invocations", "least possible",
        "runs"],
    )  # fmt: skip
    # "in process" (no freeze) was retired on 2026-12-07 after two runs beside these: its
    # full collections walked moto's heap with the GIL held, a cost no Lambda pays
    modes = ("in process, heap frozen", "a process per invocation")
    samples: dict[str, dict[int, list[Sample]]] = {mode: {1: [], n: []} for mode in modes}
    with cluster(settings) as server, environments(MIGRATIONS) as procs:
        one_run(server, 1)  # untimed: the bench process's first imports (handler, moto's ASL)
        one_run(server, n, procs)  # untimed: the environments' cold starts (up to 10)
        for _ in range(reps):
            for size in (1, n):  # interleaved: drift hits every case
                samples[modes[0]][size].append(one_run(server, size, frozen=True))
                samples[modes[1]][size].append(one_run(server, size, procs))
    for mode in modes:
        add_rows(table, mode, samples[mode], n)
    for mode in modes:
        got = samples[mode]
        fleet = median([s.wall for s in got[n]]) / median([s.wall for s in got[1]])
        table.target(f"fleet of {n} / one database, {mode}", fleet, 5.0)
    calls = sum(s.invocations for mode in modes for s in samples[mode][n])
    runs = len(modes) * reps
    table.target(f"invocations / least possible, fleet of {n}, all {runs} runs",
                 calls / (n * runs), 1.0)  # fmt: skip
    waves = 1 + -(-(n - 1) // CONCURRENCY)
    table.notes.append(
        f"fleet: the ideal with one container per invocation is {waves}x one database (the "
        f"canary, then {n - 1} at {CONCURRENCY} at a time). 'in process, heap frozen': every "
        "invocation and moto's Step Functions interpreter run in this one process (threads "
        "sharing one GIL), so the handler CPU and the interpreter's own CPU per child "
        "execution (the rest of process CPU column: JSONPath parsing, a boto3 client per "
        "Lambda task, deep copies) add up serially, where AWS runs the containers side by side "
        "and the interpreter elsewhere; with gc.freeze() from each execution's start, so that "
        "a full collection walks what that execution made, not moto and earlier runs (the "
        "full GC column: seconds in full collections, GIL held; the row without the freeze, "
        "retired after the runs of 2026-12-07 07:07 and 10:28, read 4.3-5.4x). "
        "'a process per invocation' (bench/fleet_procs.py): each concurrent "
        "invocation in its own warm worker process, its migrations and secrets on a moto "
        "server process, as AWS runs the function (the handler CPU column is then the "
        "workers', and the moto server's is its own column; in process moto's S3 and Secrets "
        "Manager are in the handler's and the rest's); the interpreter is still this process's. "
        f"Both on this machine's 2 shared cores with PostgreSQL (its CPU column: {n} databases "
        f"on one cluster here, {n} servers on AWS). Notes: docs/benchmarks.md, Issue 32 (fleet)"
    )
    table.raw = {
        "samples": {
            mode: {str(k): [vars(s) for s in v] for k, v in by_size.items()}
            for mode, by_size in samples.items()
        },
    }
    return table
