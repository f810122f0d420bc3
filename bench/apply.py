"""Benchmark 1, apply overhead: N small migrations against psql, dbmate and yoyo.

Every tool gets its own copy of the same migrations in its own file format and a fresh database
per run. StackFlowPatcher runs through the real CLI path in-process (``patcher.cli.main.main``, with
listing, reading, checksumming and the JSON result), and once more as a ``patcher`` process
for comparison with the other tools, which are processes (loading bytecode, as installed).

Two psql rows, the same SQL (each migration in its own transaction with a history insert):
``psql -f`` is what users run: psql sends each statement as its own round trip (about 6 per
migration here). ``psql batched (floor)`` joins the statements with psql's ``\\;`` into one
message per 200 migrations, as StackFlowPatcher sends them: the same round trips as ours, so
what is left between the two is each tool's own work (issue 32 item 6).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from bench import tools
from bench.common import (
    Settings,
    Table,
    bytecode_envs,
    cluster,
    count_rows,
    database,
    median,
    psql_batched,
    quiet_stdout,
    ratio,
    timed,
)
from bench.split import split_seconds
from patcher.cli import main as cli

UP = """CREATE TABLE t_{i} (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX t_{i}_name_idx ON t_{i} (name);
INSERT INTO t_{i} (id, name) VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma');
"""
DOWN = "DROP TABLE t_{i};\n"
FLOOR_TABLE = (
    "CREATE TABLE floor_history (version bigint PRIMARY KEY, checksum text NOT NULL, "
    "applied_at timestamptz NOT NULL DEFAULT now());\n"
)


def write_migrations(root: Path, n: int) -> dict[str, Path]:
    """The same N migrations in each tool's format; the floor's two SQL streams."""
    dirs = {name: root / name for name in ("patcher", "dbmate", "yoyo")}
    for d in dirs.values():
        d.mkdir(parents=True)
    up_units, down_units = [], []
    for i in range(1, n + 1):
        up, down, stem = UP.format(i=i), DOWN.format(i=i), f"{i:05d}_create_t_{i}"
        (dirs["patcher"] / f"{stem}.up.sql").write_text(up)
        (dirs["patcher"] / f"{stem}.down.sql").write_text(down)
        (dirs["dbmate"] / f"{stem}.sql").write_text(f"-- migrate:up\n{up}\n-- migrate:down\n{down}")
        (dirs["yoyo"] / f"{stem}.sql").write_text(up)
        (dirs["yoyo"] / f"{stem}.rollback.sql").write_text(down)
        digest = hashlib.sha256(up.encode()).hexdigest()
        up_units.append(f"BEGIN;\n{up}INSERT INTO floor_history (version, checksum) "
                        f"VALUES ({i}, '{digest}');\nCOMMIT;\n")  # fmt: skip
        delete = f"DELETE FROM floor_history WHERE version = {i};"
        down_units.append(f"BEGIN;\n{down}{delete}\nCOMMIT;\n")
    down_units.reverse()
    streams = {
        "psql-up": FLOOR_TABLE + "".join(up_units),
        "psql-down": "".join(down_units),
        "batched-up": FLOOR_TABLE + psql_batched(up_units),
        "batched-down": psql_batched(down_units),
    }
    for name, text in streams.items():
        (root / f"{name}.sql").write_text(text)
    return {**dirs, **{name: root / f"{name}.sql" for name in streams}}


def _check(args: list[str], stdin: Path | None = None, env: dict[str, str] | None = None) -> None:
    with open(stdin or "/dev/null", "rb") as feed:
        done = subprocess.run(args, stdin=feed, capture_output=True, env=env or tools.clean_env())
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.decode()[-800:]}")


def ours_expand(t: Tools, files: dict[str, Path], url: str) -> None:
    """The same apply as ``migrate --phase expand`` (issue 29): every script is classified."""
    _patcher_inprocess("migrate", files["patcher"], url, "--phase", "expand")


def _patcher_inprocess(action: str, source: Path, url: str, *extra: str) -> None:
    argv = [action, "--source", str(source), "--database-url", url, "--json", *extra]
    if action == "rollback":
        argv += ["--target", "0"]
    with quiet_stdout():
        code = cli.main(argv)
    if code != 0:
        raise RuntimeError(f"patcher {action} exited {code}")


@dataclass(frozen=True)
class Tools:
    psql: list[str]
    dbmate: str
    yoyo: str
    installed: dict[str, str]  # a ``patcher`` process's: bytecode, as pip installs it


def psql_up(t: Tools, files: dict[str, Path], url: str) -> None:
    _check([*t.psql, "-d", url, "-f", str(files["psql-up"])])


def psql_down(t: Tools, files: dict[str, Path], url: str) -> None:
    _check([*t.psql, "-d", url, "-f", str(files["psql-down"])])


def batched_up(t: Tools, files: dict[str, Path], url: str) -> None:
    _check([*t.psql, "-d", url, "-f", str(files["batched-up"])])


def batched_down(t: Tools, files: dict[str, Path], url: str) -> None:
    _check([*t.psql, "-d", url, "-f", str(files["batched-down"])])


def ours_up(t: Tools, files: dict[str, Path], url: str) -> None:
    _patcher_inprocess("migrate", files["patcher"], url)


def ours_down(t: Tools, files: dict[str, Path], url: str) -> None:
    _patcher_inprocess("rollback", files["patcher"], url)


def ours_process(t: Tools, files: dict[str, Path], url: str) -> None:
    _check([sys.executable, "-m", "patcher.cli", "migrate", "--source", str(files["patcher"]),
            "--database-url", url, "--json"], env=t.installed)  # fmt: skip


def warm_bytecode(t: Tools, writing: dict[str, str], files: dict[str, Path], url: str) -> None:
    """One untimed process run that fills the bytecode cache, so the timed runs only read it
    (here patcher is an editable install and ``PYTHONDONTWRITEBYTECODE`` may be set: without
    it each start would compile the ~45 patcher modules a migrate loads from source)."""
    ours_process(replace(t, installed=writing), files, url)


def dbmate_up(t: Tools, files: dict[str, Path], url: str) -> None:
    dsn = url.replace("postgresql://", "postgres://") + "?sslmode=disable"
    _check([t.dbmate, "--no-dump-schema", "--migrations-dir", str(files["dbmate"]),
            "--url", dsn, "up"])  # fmt: skip


def yoyo_up(t: Tools, files: dict[str, Path], url: str) -> None:
    dsn = url.replace("postgresql://", "postgresql+psycopg://")
    _check([t.yoyo, "apply", "--batch", "--no-config-file", "--database", dsn,
            str(files["yoyo"])])  # fmt: skip


Action = Callable[[Tools, dict[str, Path], str], None]
# name: (apply, history table it must fill, rollback measured on the same database or None)
CASES: dict[str, tuple[Action, str, Action | None]] = {
    "psql batched (floor)": (batched_up, "floor_history", batched_down),
    "psql -f": (psql_up, "floor_history", psql_down),
    "StackFlowPatcher": (ours_up, "schema_migrations", ours_down),
    "StackFlowPatcher --phase expand": (ours_expand, "schema_migrations", None),
    "patcher (process)": (ours_process, "schema_migrations", None),
    "dbmate": (dbmate_up, "schema_migrations", None),
    "yoyo": (yoyo_up, "_yoyo_migration", None),
}
FLOOR, PSQL = "psql batched (floor)", "psql -f"
OURS, PROCESS = "StackFlowPatcher", "patcher (process)"


def _targets(table: Table, n: int, times: dict[str, list[float]]) -> None:
    """Issue 32 item 6: within 1.2x of the batched floor (in-process and as a process), at most
    0.8x what users run (psql -f); below dbmate, as a process too. Issue 29's: an
    expand-phase apply within 1.05x of a plain one. Rollback at most psql -f's rollback."""
    m = {name: median(values) for name, values in times.items()}
    floor, ours, process = m[FLOOR], m[OURS], m[PROCESS]
    table.target(f"{OURS} / batched floor at N={n}", ours / floor, 1.2)
    table.target(f"{PROCESS} / batched floor at N={n}", process / floor, 1.2)
    table.target(f"{OURS} / psql -f at N={n}", ours / m[PSQL], 0.8)
    table.target(f"{PROCESS} / psql -f at N={n}", process / m[PSQL], 0.8)
    table.target(f"{PROCESS} / dbmate at N={n}", process / m["dbmate"], 1.0)
    table.target(f"{OURS} / dbmate at N={n}", ours / m["dbmate"], 1.0)
    expand = m[f"{OURS} --phase expand"] / ours
    table.target(f"{OURS} --phase expand / plain apply at N={n}", expand, 1.05)
    back = m[f"{OURS} rollback"] / m[f"{PSQL} rollback"]
    table.target(f"{OURS} rollback / psql -f rollback at N={n}", back, 1.0)


def run(settings: Settings) -> Table:
    sizes = [50] if settings.smoke else [500, 2000]
    table = Table(
        "apply",
        "1. Apply overhead: N small migrations, one transaction each, fresh database",
        ["N", "tool", "median s", "ms/migration", "x floor", "x psql -f", "runs"],
    )
    with cluster(settings) as server, tempfile.TemporaryDirectory(prefix="bench-apply-") as tmp:
        psql = [tools.psql(server.bin_dir), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        reading, writing = bytecode_envs(tools.clean_env(), Path(tmp) / "pyc")
        t = Tools(psql, tools.dbmate(), tools.yoyo(), reading)
        for n in sizes:
            files = write_migrations(Path(tmp) / str(n), n)
            if n == sizes[0]:
                with database(server) as url:
                    warm_bytecode(t, writing, files, url)
            times: dict[str, list[float]] = {name: [] for name in CASES}
            times |= {f"{name} rollback": [] for name, case in CASES.items() if case[2]}
            for _ in range(settings.reps(5)):  # issue 32: medians of at least 5 runs
                for name, (up, history, down) in CASES.items():  # interleaved: drift hits all
                    with database(server) as url:
                        times[name].append(timed(partial(up, t, files, url)))
                        if count_rows(url, history) != n:
                            raise RuntimeError(f"{name} did not record {n} migrations")
                        if down is not None:
                            times[f"{name} rollback"].append(timed(partial(down, t, files, url)))
                            if count_rows(url, history) != 0:
                                raise RuntimeError(f"{name}: the rollback left history rows")
            ups = [p.read_text() for p in sorted(files["patcher"].glob("*.up.sql"))]
            for label, seconds in split_seconds(ups, settings.reps(5)).items():  # issue 26 item 2
                table.notes.append(
                    f"N={n}: {label} per script: {seconds / len(ups) * 1e6:.0f} us "
                    f"({len(ups)} up scripts, in process)"
                )
            for name, values in times.items():
                m, back = median(values), " rollback" if "rollback" in name else ""
                base, users = median(times[FLOOR + back]), median(times[PSQL + back])
                table.add(n, name, m, m / n * 1000, ratio(m, base), ratio(m, users), len(values))
            table.raw[str(n)] = times
            _targets(table, n, times)
    table.notes.append(
        "psql -f sends each statement as its own round trip; psql batched (floor) sends the same "
        "SQL joined with \\; in one message per 200 migrations, as StackFlowPatcher batches"
    )
    table.notes.append(
        "StackFlowPatcher runs in-process (patcher.cli.main.main): no interpreter start or imports "
        "(~0.2-0.5 s); 'patcher (process)' is the same as a command, like the other tools, "
        "loading bytecode as an installed package does"
    )
    return table
