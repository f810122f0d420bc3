"""Benchmark 3b, cold start as Lambda runs it: the built package, read-only, the runtime's Python.

Benchmark 3 times imports from a virtualenv whose bytecode is at hand. Lambda has none of that:
it unzips the package into a read-only /var/task and starts the runtime's CPython, which can
write no ``__pycache__``, so whatever the zip does not carry as bytecode is compiled from source
at every cold start. This case builds the lock the way ``make package`` does, but for this
machine's platform (the same pins; arm64 wheels cannot run here), twice: as the package was
built until issue 32 (``--no-compile``) and as it is built now (unchecked-hash bytecode
compiled by the runtime's minor). Each is unzipped and made read-only. Every sample is a fresh
``pythonX.Y -P -s -S`` (no site-packages, nothing but the package and the stdlib on the path)
with ``PYTHONDONTWRITEBYTECODE=1`` and the variables the Lambda runtime sets, timing inside the
process: the import of ``patcher.handler`` (init) and the first ``status`` invocation against a
real database whose migrations come from S3 (moto's server over HTTP), as the first deploy
call of a cold function does. The floor is the dependencies the handler cannot avoid
(bench.coldstart's baseline: psycopg, one pydantic model, Powertools' Logger, Metrics and
Tracer), imported from the new package in the same kind of process.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from types import ModuleType

from moto.server import ThreadedMotoServer

from bench import tools
from bench.coldstart import BASELINE, CASES
from bench.common import ROOT, Settings, Table, cluster, database, median, ratio
from bench.corpus import _lambda_env
from tests.fixtures.s3 import S3Bucket, make_client

PREFIX = "migrations/"
TEMPLATE = ROOT / "template.yaml"
# argv: task dir, JSON payload. Prints init seconds and first-invocation seconds.
INVOKE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
started = time.perf_counter()
from patcher.handler import lambda_handler
imported = time.perf_counter()

class Context:
    aws_request_id = "bench-coldstart"
    function_name = "StackFlowPatcher"
    function_version = "1"
    memory_limit_in_mb = 512
    client_context = None
    log_group_name = "/aws/lambda/StackFlowPatcher"
    log_stream_name = "bench"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:StackFlowPatcher:live"

    def get_remaining_time_in_millis(self):
        return 900000

result = lambda_handler(json.loads(sys.argv[2]), Context())
done = time.perf_counter()
if not result["ok"]:
    raise SystemExit(json.dumps(result)[:2000])
print(imported - started, done - imported)
"""
FLOOR = "import sys, time\nsys.path.insert(0, sys.argv[1])\n_s = time.perf_counter()\n{code}\n"
FLOOR += "print(time.perf_counter() - _s, 0.0)\n"
TODAY = "package until issue 32 (no bytecode)"
NEW = "package now (unchecked-hash bytecode)"
NEW_UNTRACED = "package now, Tracing PassThrough"
DEPS = "deps alone, from the package now (floor)"


def _build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_package", ROOT / "scripts/build_package.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _runtime_python(build: ModuleType) -> tuple[str, str]:
    """The template's runtime minor and an interpreter of it (this one when none is found)."""
    runtimes = re.findall(r"^\s+Runtime: python(3\.\d+)\s*$", TEMPLATE.read_text(), re.M)
    minor = runtimes[0]
    python = build.find_runtime_python(minor)
    if python is None:
        return sys.executable, f"{sys.version_info[0]}.{sys.version_info[1]}"
    return python, minor


def _package(where: Path, minor: str, compiled: bool) -> Path:
    """Build, unzip and make read-only; returns the task directory."""
    arch = "aarch64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    cmd = [sys.executable, str(ROOT / "scripts/build_package.py")]
    cmd += ["--platform", f"manylinux_2_34_{arch}", "--python-version", minor, "--insecure-no-ca"]
    cmd += ["--dir", str(where / "lambda"), "--out", str(where / "lambda.zip")]
    cmd += [] if compiled else ["--no-compile"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=900)
    task = where / "task"
    with zipfile.ZipFile(where / "lambda.zip") as archive:
        archive.extractall(task)
    for path in [task, *task.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    return task


def _sample(python: str, code: str, task: Path, env: dict[str, str], *args: str) -> list[float]:
    """(init s, first invocation s, process wall s) of one fresh interpreter."""
    started = time.perf_counter()
    done = subprocess.run(
        # -I's isolation but for the environment (PYTHONDONTWRITEBYTECODE), which -I ignores
        [python, "-P", "-s", "-S", "-c", code, str(task), *args],
        env=env,
        cwd=task.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"cold start failed: {done.stdout[-800:]} {done.stderr[-1500:]}")
    init, first = done.stdout.split()[-2:]
    return [float(init), float(first), wall]


def _writable(task: Path) -> None:
    for path in [task, *task.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)


def run(settings: Settings) -> Table:
    reps = settings.reps(5 if settings.smoke else 9)
    build = _build_script()
    python, minor = _runtime_python(build)
    table = Table(
        "coldstart_lambda",
        f"3b. Cold start as Lambda runs it: read-only package, python{minor}, first status call",
        ["case", "import s", "first status s", "init + first s", "process wall s",
         "import x floor", "runs"],
    )  # fmt: skip
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    samples: dict[str, list[list[float]]] = {TODAY: [], NEW: [], NEW_UNTRACED: [], DEPS: []}
    tasks: list[Path] = []
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = make_client(endpoint)
        bucket = S3Bucket(f"bench-coldstart-{int(time.time())}", client)
        client.create_bucket(Bucket=bucket.name)
        bucket.put_many(
            {PREFIX + p.name: p.read_bytes() for p in (ROOT / "migrations").glob("*.sql")}
        )
        with (
            cluster(settings) as srv,
            database(srv) as url,
            tempfile.TemporaryDirectory(prefix="bench-coldstart-lambda-") as tmp,
        ):
            today = _package(Path(tmp) / "today", minor, compiled=False)
            new = _package(Path(tmp) / "new", minor, compiled=True)
            tasks = [today, new]
            env = {**tools.clean_env(), **_lambda_env(endpoint, bucket.name, url)}
            env = {**env, "PYTHONDONTWRITEBYTECODE": "1", "LAMBDA_TASK_ROOT": str(new)}
            env.pop("PYTHONPATH", None)
            migrate = json.dumps({"action": "migrate"})
            status = json.dumps({"action": "status"})
            _sample(python, INVOKE, new, env, migrate)  # the database as a deploy leaves it
            untraced = {**env, "POWERTOOLS_TRACE_DISABLED": "true"}
            floor = FLOOR.format(code=CASES[BASELINE])
            for _ in range(reps):  # interleaved: drift hits every case alike
                samples[TODAY].append(_sample(python, INVOKE, today, env, status))
                samples[NEW].append(_sample(python, INVOKE, new, env, status))
                samples[NEW_UNTRACED].append(_sample(python, INVOKE, new, untraced, status))
                samples[DEPS].append(_sample(python, floor, new, env))
            for task in tasks:
                _writable(task)  # so that the temporary directory can go
    finally:
        server.stop()
    medians = {name: [median([s[i] for s in v]) for i in range(3)] for name, v in samples.items()}
    base = medians[DEPS][0]
    for name, (init, first, wall) in medians.items():
        first_cell = first if name != DEPS else None
        total = init + first if name != DEPS else None
        table.add(name, init, first_cell, total, wall, ratio(init, base), len(samples[name]))
    table.target(
        "cold start import: package now / until issue 32", medians[NEW][0] / medians[TODAY][0], 0.5
    )
    table.target("cold start import: package now / its deps (floor)", medians[NEW][0] / base, 1.1)
    table.notes.append(
        f"python{minor} at {python}; {os.cpu_count()} CPUs; each sample a fresh `-P -s -S` "
        "interpreter on a read-only unzipped package with PYTHONDONTWRITEBYTECODE=1 and the "
        "Lambda runtime's variables (Tracing Active unless said); the database at the "
        "repository's migrations/, read from moto's S3 over HTTP"
    )
    table.raw = samples
    return table
