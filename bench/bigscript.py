"""Benchmark 5, big script: one data migration of many INSERT statements, time and peak memory.

StackFlowPatcher runs as a ``patcher migrate`` process, psql as ``psql -1 -f`` (one
transaction, as StackFlowPatcher runs a transactional script). Peak RSS is each child's own
``ru_maxrss`` from ``os.wait4``. The interpreter baseline is a process that imports the same
patcher modules and does nothing; the target is on the peak above that baseline.

The same script is also previewed, each in a fresh process and database: ``migrate --dry-run``
(the plan and the risk analysis, which parses the SQL with pglast) and ``migrate --dry-run
--verify`` (that, plus executing the script in a rolled-back transaction). SPEC section 7 item
7: each stays within 3x the script above the baseline, like applying.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import tools
from bench.common import ROOT, Settings, Table, cluster, database, median, ratio
from bench.split import split_seconds

ROWS_PER_INSERT = 10
PAYLOAD = "x" * 180
BASELINE_CODE = (
    "import patcher.cli.main, patcher.app.commands, patcher.engine.runner, patcher.sql.scripts"
)
# Each a fresh process on a fresh database: apply, the dry run (risks), the verified dry run.
PATCHER_CASES: dict[str, tuple[str, ...]] = {
    "patcher": (),
    "dry_run": ("--dry-run",),
    "verify": ("--dry-run", "--verify"),
}


def write_script(path: Path, size: int) -> int:
    """A migration of INSERT statements totalling about ``size`` bytes; returns the bytes."""
    parts = ["CREATE TABLE big (id bigint PRIMARY KEY, payload text NOT NULL);\n"]
    written, row = len(parts[0]), 0
    while written < size:
        values = ", ".join(f"({row + k}, '{PAYLOAD}{row + k}')" for k in range(ROWS_PER_INSERT))
        row += ROWS_PER_INSERT
        statement = f"INSERT INTO big (id, payload) VALUES {values};\n"
        parts.append(statement)
        written += len(statement)
    path.write_text("".join(parts))
    return written


# A child's ru_maxrss includes the memory of whatever forked it (Linux keeps the pre-exec high
# water mark), and we are a big process: a small launcher forks the child and reports its rusage.
LAUNCHER = (
    "import os, sys\n"
    "pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)\n"
    "_pid, status, usage = os.wait4(pid, 0)\n"
    "print(usage.ru_maxrss, file=sys.stderr)\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def measure(args: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one child process, which must succeed."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-I", "-S", "-c", LAUNCHER, *args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=tools.clean_env(), cwd=ROOT, check=False)  # fmt: skip
    wall = time.perf_counter() - started
    err = done.stderr.decode()
    if done.returncode != 0:
        raise RuntimeError(f"{args[:3]} exited {done.returncode}: {err[-800:]}")
    return wall, int(err.strip().splitlines()[-1]) * 1024  # Linux reports kilobytes


def run(settings: Settings) -> Table:
    size = (5 if settings.smoke else 50) * 1_000_000
    reps = settings.reps(3)
    table = Table(
        "bigscript", f"5. Big script: one {size // 1_000_000} MB migration of INSERT statements",
        ["case", "median s", "x psql", "peak RSS MB", "above baseline MB", "x script size",
         "runs"],
    )  # fmt: skip
    samples: dict[str, list[tuple[float, int]]] = {
        "floor": [],
        "baseline": [],
        "patcher": [],
        "dry_run": [],
        "verify": [],
        "psql": [],
    }
    with cluster(settings) as server, tempfile.TemporaryDirectory(prefix="bench-big-") as tmp:
        source = Path(tmp) / "migrations"
        source.mkdir()
        script = source / "00001_load_big.up.sql"
        size = write_script(script, size)
        script_text = script.read_text()
        psql = tools.psql(server.bin_dir)
        for _ in range(reps):
            samples["floor"].append(measure(["/bin/true"]))
            samples["baseline"].append(measure([sys.executable, "-c", BASELINE_CODE]))
            for case, flags in PATCHER_CASES.items():
                with database(server) as url:
                    samples[case].append(measure(
                        [sys.executable, "-m", "patcher.cli", "migrate", *flags, "--source",
                         str(source), "--database-url", url, "--json"]))  # fmt: skip
            with database(server) as url:
                samples["psql"].append(measure(
                    [psql, "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f", str(script), "-d", url]
                ))  # fmt: skip
    mb = 1_000_000
    base_rss = median([s[1] for s in samples["baseline"]])
    psql_time = median([s[0] for s in samples["psql"]])
    for case, label in (("floor", "launcher floor (/bin/true)"),
                        ("baseline", "python importing patcher (idle)"),
                        ("patcher", "StackFlowPatcher (patcher migrate)"),
                        ("dry_run", "patcher migrate --dry-run"),
                        ("verify", "patcher migrate --dry-run --verify"),
                        ("psql", "psql -1 -f")):  # fmt: skip
        wall, rss = median([s[0] for s in samples[case]]), median([s[1] for s in samples[case]])
        above = rss - base_rss if case in PATCHER_CASES else None
        table.add(label, wall, ratio(wall, psql_time) if case in ("patcher", "psql") else None,
                  rss / mb, above / mb if above is not None else None,
                  ratio(above, size) if above is not None else None, reps)  # fmt: skip
    for case, what in (("patcher", "StackFlowPatcher"), ("dry_run", "dry run"),
                       ("verify", "dry run with verify")):  # fmt: skip
        peak = median([s[1] for s in samples[case]])
        table.target(f"{what} peak RSS above baseline / script size",
                     (peak - base_rss) / size, 3.0)  # fmt: skip
    for label, seconds in split_seconds([script_text], reps).items():  # issue 26 item 2
        table.add(f"{label} (in process, split only)", seconds, None, None, None, None, reps)
    table.notes.append(f"script: {size / mb:.1f} MB, {ROWS_PER_INSERT} rows per INSERT; "
                       f"this process's own peak RSS {_self_rss() / mb:.0f} MB")  # fmt: skip
    table.raw = {"script_bytes": size, "samples": samples}
    return table


def _self_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
