"""Benchmark 3, cold start: importing ``patcher.handler`` against importing what it cannot avoid.

Each figure is the median over fresh interpreters of ``python -X importtime -c "import ..."``:
the sum of the cumulative times of the top-level imports the ``-c`` code made (interpreter
start-up imports such as ``site`` excluded). The unavoidable dependencies are what the handler
module needs at import or on every invocation before any work: powertools' Logger, Metrics and
Tracer (decorators at module level), pydantic (the payload model) and psycopg (every run
connects), each loaded as far as the handler uses it (one strict pydantic model; psycopg's
sql, rows and conninfo modules). Tracer() is instantiated as the handler does: it loads the
X-Ray SDK, which the template's ``Tracing: Active`` needs on every invocation anyway. boto3
is needed by every deployed run too (S3 source, Secrets Manager) but lazily, inside
``execute``: it is shown apart, not counted against the handler.
"""

from __future__ import annotations

import subprocess
import sys
import time
import zipfile

from bench.common import ROOT, Settings, Table, median, ratio

CLASSES = (
    "from aws_lambda_powertools import Logger, Metrics, Tracer; "
    "from aws_lambda_powertools.metrics import MetricUnit"
)
POWERTOOLS = (  # as handler.py makes them; Tracer() loads aws_xray_sdk (Tracing: Active)
    f"{CLASSES}; Logger(service='s'); Metrics(namespace='n', service='s'); Tracer(service='s')"
)
# `import pydantic` and `import psycopg` alone load almost nothing (pydantic is lazy); what the
# handler cannot avoid is pydantic's validation machinery for one strict model, and psycopg's
# query composition (sql), row factories and conninfo, so the baseline loads exactly that.
PYDANTIC = (
    "from typing import Literal; from pydantic import BaseModel, ConfigDict, Field, "
    "ValidationError; type('P', (BaseModel,), {'__annotations__': {'a': Literal['x'], "
    "'n': int | None}, 'model_config': ConfigDict(strict=True, extra='forbid'), "
    "'n': Field(default=None, ge=0)})"
)
PSYCOPG = "import psycopg, psycopg.sql, psycopg.rows, psycopg.conninfo"
DEPS = f"{PSYCOPG}; {PYDANTIC}"
CASES = {
    "interpreter only (python -c pass)": "pass",
    "deps: psycopg + pydantic + powertools": f"{DEPS}; {POWERTOOLS}",
    "deps without X-Ray (powertools classes only)": f"{DEPS}; {CLASSES}",
    "patcher.handler": "import patcher.handler",
    "boto3 alone (lazy in patcher)": "import boto3",
    "deps + boto3": f"import boto3; {DEPS}; {POWERTOOLS}",
    "patcher.handler + boto3": "import patcher.handler, boto3",
}
BASELINE = "deps: psycopg + pydantic + powertools"


def _startup_modules() -> set[str]:
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stderr  # fmt: skip
    return {line.rsplit("|", 1)[1].strip() for line in out.splitlines() if "|" in line}


def import_seconds(code: str, startup: set[str]) -> tuple[float, float]:
    """(importtime seconds of the code's top-level imports, wall seconds of the process)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"python -c {code!r} failed: {done.stderr[-800:]}")
    total_us = 0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _self, cumulative, name = line.removeprefix("import time:").split("|")
        if name.startswith("  ") or not cumulative.strip().isdigit():
            continue  # nested import, or the header line
        if name.strip() not in startup:
            total_us += int(cumulative)
    return total_us / 1e6, wall


def _package_size() -> str:
    path = ROOT / "build" / "lambda.zip"
    if not path.is_file():
        return "not built (build/lambda.zip missing: run make package)"
    with zipfile.ZipFile(path) as zf:
        unzipped = sum(info.file_size for info in zf.infolist())
    return (f"build/lambda.zip: {path.stat().st_size / 1e6:.1f} MB zipped (limit 50), "
            f"{unzipped / 1e6:.1f} MB unzipped (limit 250)")  # fmt: skip


def run(settings: Settings) -> Table:
    reps = settings.reps(5 if settings.smoke else 15)
    table = Table(
        "coldstart", "3. Cold start: import time in fresh interpreters",
        ["import", "importtime s", f"x {BASELINE.split(':')[0]}", "process wall s", "runs"],
    )  # fmt: skip
    startup = _startup_modules()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in CASES}
    for _ in range(reps):
        for name, code in CASES.items():  # interleaved, so drift hits every case alike
            samples[name].append(import_seconds(code, startup))
    base = median([s[0] for s in samples[BASELINE]])
    for name, values in samples.items():
        imp = median([s[0] for s in values])
        table.add(name, imp, ratio(imp, base) if imp else None,
                  median([s[1] for s in values]), len(values))  # fmt: skip
    handler = median([s[0] for s in samples["patcher.handler"]])
    table.target("patcher.handler import / its deps", handler / base, 1.15)
    table.notes.append(f"deployment package: {_package_size()}")
    table.raw = {name: [list(s) for s in values] for name, values in samples.items()}
    return table
