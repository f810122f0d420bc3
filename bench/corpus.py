"""Benchmark 6, a real-world shaped corpus: ~250 migrations of mixed size, from S3, by a fresh
process through ``lambda_handler``, against what a user would run instead (issue 32 item 5):
``aws s3 sync`` (the AWS CLI from PyPI, in the bench's own tool directory) then one psql
process, and a small boto3 download script then psql; with psql from local files as the
reference and the same SQL batched as we batch it as the floor (``bench.corpus_peers``).

The corpus (fixed seed): wide tables (20-40 columns, defaults, checks) with their indexes,
PL/pgSQL functions and triggers with ``$$`` bodies, views over earlier tables, data loads and
updates of a few thousand rows, column additions with comments, and a few no-transaction
``CREATE INDEX CONCURRENTLY``. moto's ThreadedMotoServer serves S3 over HTTP from this process
to every case alike (its request handling shares this process's GIL, not the children's).
StackFlowPatcher runs as a new ``python`` process that imports ``patcher.aws.handler`` and calls
``lambda_handler`` once (the cold start of a Lambda container, interpreter start included), and
ends as an invocation does, without the interpreter's teardown (which the old row, kept for a
run beside it, still pays: ~0.1 s of freeing every module), with the variables the Lambda
runtime sets (so tracing is live, as in the deployed function), loading bytecode from a cache
filled by one untimed run, as an installed package (and the AWS CLI's venv) has it. psql gets
each transactional file in its own transaction with a history insert. Two more processes split
our time: the interpreter with the handler's imports alone, and those plus the S3 listing and
reads the handler makes; every case is checked to have applied all.
"""

from __future__ import annotations

import hashlib
import logging
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from moto.server import ThreadedMotoServer

from bench import corpus_peers as peers
from bench import tools
from bench.common import (
    ROOT,
    Settings,
    Table,
    bytecode_envs,
    cluster,
    count_rows,
    database,
    median,
    ratio,
    timed,
)
from tests.fixtures.s3 import S3Bucket, make_client

PREFIX = "migrations/"
NO_TX = "-- patcher:no-transaction\n"
TYPES = ("text", "integer", "bigint", "boolean DEFAULT false", "numeric(12,2)",
         "timestamptz DEFAULT now()", "jsonb DEFAULT '{}'", "date", "uuid",
         "text NOT NULL DEFAULT ''")  # fmt: skip
HANDLER = (
    "import json, sys\n"
    "from patcher.aws.handler import lambda_handler\n"
    "from patcher.dev.devrun import LambdaContext\n"
    "result = lambda_handler({'action': 'migrate'}, LambdaContext())\n"
    "code = 0 if result['status'] == 'applied' else "
    "f\"{result['status']}: {json.dumps(result['error'])[:600]}\"\n"
)
TEARDOWN = "sys.exit(code)\n"
"""How the old row ended: the interpreter frees every module and object (~0.1 s here)."""
AS_LAMBDA = (
    "import os\n"
    "if code: print(code, file=sys.stderr)\n"
    "sys.stdout.flush(); sys.stderr.flush()\n"
    "os._exit(1 if code else 0)\n"
)
"""How a Lambda invocation ends: the runtime keeps the process for the next one (or freezes
and later kills it); no invocation pays for the interpreter's teardown."""


def _wide(rng: random.Random, i: int) -> str:
    cols = ["    c0 text", "    c1 text"]
    cols += [f"    c{k} {rng.choice(TYPES)}" for k in range(2, rng.randint(20, 40))]
    return (
        f"CREATE TABLE w{i} (\n    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
        + ",\n".join(cols)
        + f",\n    CONSTRAINT w{i}_c0_len CHECK (length(c0::text) < 500)\n);\n"
        f"CREATE INDEX w{i}_c1_idx ON w{i} (c1);\nCREATE INDEX w{i}_c2_c3_idx ON w{i} (c2, c3);\n"
        f"COMMENT ON TABLE w{i} IS 'wide table {i}; see the service''s data model';\n"
    )


def _function(i: int, table: int) -> str:
    return (
        f"CREATE OR REPLACE FUNCTION touch_{i}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n    -- a semicolon inside the body; and a 'quote'\n"
        "    NEW.c1 := coalesce(NEW.c1, TG_OP);\n    RETURN NEW;\nEND;\n$$;\n"
        f"CREATE FUNCTION score_{i}(x integer) RETURNS integer LANGUAGE sql IMMUTABLE\n"
        f"    AS $body$ SELECT x * {i} + 1 $body$;\n"
        f"CREATE TRIGGER w{table}_touch_{i} BEFORE INSERT ON w{table}\n"
        f"    FOR EACH ROW EXECUTE FUNCTION touch_{i}();\n"
    )


def _data(rng: random.Random, i: int, table: int) -> str:
    rows = rng.choice((200, 1000, 3000))
    return (
        f"INSERT INTO w{table} (c0, c1)\n    SELECT 'row ' || g, g::text\n"
        f"      FROM generate_series(1, {rows}) AS g;\n"
        f"UPDATE w{table} SET c0 = c0 || ' (checked {i})' WHERE id % 3 = 0;\n"
        f"DELETE FROM w{table} WHERE id % 97 = {i % 97};\n"
    )


def corpus(n: int, seed: int = 250) -> dict[str, str]:
    """``n`` migrations by file name; a few no-transaction ones among them."""
    rng = random.Random(seed)
    files: dict[str, str] = {}
    tables: list[int] = []
    for i in range(1, n + 1):
        kind = "wide" if len(tables) < 3 else rng.choice(
            ("wide", "wide", "function", "view", "data", "data", "alter", "index")
        )  # fmt: skip
        table = rng.choice(tables) if tables else 0
        if kind == "index" and i % 5:
            kind = "alter"  # about one in twenty: the no-transaction ones
        if kind == "wide":
            text = _wide(rng, i)
            tables.append(i)
        elif kind == "function":
            text = _function(i, table)
        elif kind == "view":
            text = (f"CREATE VIEW v{i} AS\n    SELECT id, c0, c1 FROM w{table}\n"
                    f"     WHERE c1 IS NOT NULL;\n"
                    f"COMMENT ON VIEW v{i} IS 'view {i}';\n")  # fmt: skip
        elif kind == "data":
            text = _data(rng, i, table)
        elif kind == "alter":
            text = (f"ALTER TABLE w{table} ADD COLUMN extra_{i} text DEFAULT 'x';\n"
                    f"COMMENT ON COLUMN w{table}.extra_{i} IS 'added by {i}';\n")  # fmt: skip
        else:
            text = (f"{NO_TX}CREATE INDEX CONCURRENTLY IF NOT EXISTS w{table}_c0_{i}\n"
                    f"    ON w{table} (c0);\n")  # fmt: skip
        files[f"{i:04d}_{kind}_{i}.up.sql"] = text
    return files


def psql_stream(files: dict[str, str]) -> str:
    """The same files for one psql process: each transactional one with its history insert in
    one transaction; a no-transaction one as it is, then its insert."""
    parts = ["CREATE TABLE floor_history (version bigint PRIMARY KEY, checksum text NOT NULL, "
             "applied_at timestamptz NOT NULL DEFAULT now());\n"]  # fmt: skip
    for name, text in files.items():
        digest = hashlib.sha256(text.encode()).hexdigest()
        insert = f"INSERT INTO floor_history VALUES ({int(name[:4])}, '{digest}');\n"
        if text.startswith(NO_TX):
            parts.append(f"{text}{insert}")
        else:
            parts.append(f"BEGIN;\n{text}{insert}COMMIT;\n")
    return "".join(parts)


def _check(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, capture_output=True, env=env, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.decode()[-800:]}")


@dataclass(frozen=True)
class World:
    """What every case of one run shares: the S3 endpoint and bucket, psql, the scratch dir."""

    endpoint: str
    bucket: str
    psql: list[str]
    aws: str
    tmp: Path
    files: dict[str, str]
    reading: dict[str, str]  # a Python child's environment: bytecode read from the warm cache

    def aws_env(self) -> dict[str, str]:
        return {**self.reading, **_credentials()}

    def fetch_then_psql(self, fetch: Callable[[Path], list[str]], url: str) -> None:
        """A fresh directory, the fetch process, then psql over what it wrote."""
        out = Path(tempfile.mkdtemp(dir=self.tmp))
        _check(fetch(out), self.aws_env())
        script = out.parent / f"{out.name}.driver.sql"
        script.write_text(peers.driver(self.files, out))
        _check([*self.psql, "-d", url, "-f", str(script)], tools.clean_env())


def _cases(w: World) -> dict[str, tuple[Callable[[str], None], str | None]]:
    """Each case: (action on a fresh database's URL, history table it must fill or None)."""
    prefix = PREFIX

    def psql_file(name: str) -> Callable[[str], None]:
        return lambda url: _check([*w.psql, "-d", url, "-f", str(w.tmp / name)], tools.clean_env())

    def ours(ending: str, url: str) -> None:
        env = {**w.reading, **_lambda_env(w.endpoint, w.bucket, url)}
        _check([sys.executable, "-c", HANDLER + ending], env)

    def part(script: str, *args: str) -> Callable[[str], None]:
        env = {**w.reading, **_lambda_env(w.endpoint, w.bucket, "postgresql://unused")}
        return lambda url: _check([sys.executable, "-c", script + AS_LAMBDA, *args], env)

    sync = partial(peers.s3_sync, w.aws, w.bucket, prefix, endpoint=w.endpoint)
    download = partial(peers.boto3_download, w.bucket, prefix, endpoint=w.endpoint)
    return {
        REFERENCE: (psql_file("corpus.sql"), "floor_history"),
        FLOOR: (psql_file("batched.sql"), "floor_history"),
        SYNC: (partial(w.fetch_then_psql, sync), "floor_history"),
        "boto3 download script + psql (S3)": (partial(w.fetch_then_psql, download),
                                              "floor_history"),
        OURS: (partial(ours, AS_LAMBDA), "schema_migrations"),
        OURS_TEARDOWN: (partial(ours, TEARDOWN), "schema_migrations"),
        IMPORTS: (part(peers.IMPORTS), None),
        S3_READS: (part(peers.S3_READS, str(len(w.files))), None),
    }  # fmt: skip


REFERENCE = "psql -f, local files (reference)"
FLOOR = "psql, batched as we batch, local files (floor)"
SYNC = "aws s3 sync + psql (S3)"
OURS = "StackFlowPatcher (fresh process, lambda_handler, S3)"
OURS_TEARDOWN = "StackFlowPatcher, then the interpreter's teardown (old row)"
IMPORTS = "part: interpreter + handler imports"
S3_READS = "part: + S3 listing and reads"


def run(settings: Settings) -> Table:
    n = 60 if settings.smoke else 250
    reps = settings.reps(5)
    files = corpus(n)
    size = sum(len(t) for t in files.values())
    no_tx = sum(t.startswith(NO_TX) for t in files.values())
    table = Table(
        "corpus",
        f"6. Real-world shaped corpus: {n} mixed migrations ({no_tx} no-transaction), from S3",
        ["case", "median s", "x psql -f", "x aws s3 sync + psql", *CPU, "runs"],
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = make_client(endpoint)
        bucket = S3Bucket(f"bench-corpus-{int(time.time())}", client)
        client.create_bucket(Bucket=bucket.name)
        bucket.put_many({PREFIX + name: text.encode() for name, text in files.items()})
        with cluster(settings) as srv, tempfile.TemporaryDirectory(prefix="bench-corpus-") as tmp:
            times = _measure(settings, srv, endpoint, bucket.name, Path(tmp), files, reps)
    finally:
        server.stop()
    _report(table, times, reps, size)
    return table


def _measure(settings: Settings, srv: Any, endpoint: str, bucket: str, tmp: Path,
             files: dict[str, str], reps: int) -> dict[str, list[float]]:  # fmt: skip
    (tmp / "corpus.sql").write_text(psql_stream(files))
    (tmp / "batched.sql").write_text(peers.batched_stream(files))
    reading, writing = bytecode_envs(tools.clean_env(), tmp / "pyc")
    psql = [tools.psql(srv.bin_dir), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    w = World(endpoint, bucket, psql, tools.awscli(), tmp, files, reading)
    cases = _cases(w)
    with database(srv) as url:  # fill the bytecode cache once (untimed), as pip would have
        _check([sys.executable, "-c", HANDLER + TEARDOWN],
               {**writing, **_lambda_env(endpoint, bucket, url)})  # fmt: skip
        _check(peers.boto3_download(bucket, PREFIX, Path(tempfile.mkdtemp(dir=tmp)), endpoint),
               {**writing, **_credentials()})  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in cases}
    times |= {f"{name} {cpu}": [] for name in cases for cpu in CPU}
    for _ in range(reps):  # interleaved: drift hits every case alike
        for name, (action, history) in cases.items():
            with database(srv) as url:
                own, children = time.process_time(), _children_cpu()
                times[name].append(timed(partial(action, url)))
                times[f"{name} {CPU[0]}"].append(time.process_time() - own)
                times[f"{name} {CPU[1]}"].append(_children_cpu() - children)
                if history is not None and count_rows(url, history) != len(files):
                    raise RuntimeError(f"corpus: {name} did not record {len(files)} migrations")
    return times


CPU = ("moto CPU", "processes CPU")
"""This process's CPU while a case runs (it only waits: that is the moto server's work for the
case) and its child processes' (the tools themselves; not the PostgreSQL server's)."""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _report(table: Table, times: dict[str, list[float]], reps: int, size: int) -> None:
    m = {name: median(values) for name, values in times.items()}
    for name, value in m.items():
        if not name.endswith(CPU):
            cpu = [m[f"{name} {c}"] for c in CPU]
            table.add(name, value, ratio(value, m[REFERENCE]), ratio(value, m[SYNC]), *cpu, reps)
    table.target("corpus: StackFlowPatcher / aws s3 sync + psql", m[OURS] / m[SYNC], 0.8)
    table.notes.append(
        "corpus: our process ends as a Lambda invocation does, without the interpreter's "
        f"teardown (the runtime keeps the process); the old row is the same run followed by "
        f"the teardown, {m[OURS_TEARDOWN] - m[OURS]:.2f} s more (runs before 2026-12-07 10:28 "
        "include it)"
    )
    reads = m[S3_READS] - m[IMPORTS]
    rest = m[OURS] - m[S3_READS] - m[FLOOR]
    table.notes.append(
        f"corpus: {size / 1000:.0f} kB of SQL; where our {m[OURS]:.2f} s go (medians of "
        f"separate processes, so the parts add up only within the run's noise): interpreter "
        f"and imports {m[IMPORTS]:.2f} s; S3 listing and reads {reads:.2f} s, of which the moto "
        f"server's own CPU {m[f'{S3_READS} {CPU[0]}'] - m[f'{IMPORTS} {CPU[0]}']:.2f} s; "
        f"PostgreSQL's work on the same SQL as we send it (the batched floor, psql included) "
        f"{m[FLOOR]:.2f} s; the rest (our engine: checks, lock, history, result) {rest:.2f} s"
    )
    table.raw = {"times": times, "bytes": size}


def _credentials() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _lambda_env(endpoint: str, bucket: str, url: str) -> dict[str, str]:
    return {
        "PATCHER_SOURCE": f"s3://{bucket}/{PREFIX}",
        "PATCHER_DATABASE_URL": url,
        "AWS_ENDPOINT_URL_S3": endpoint,
        **_credentials(),
        "POWERTOOLS_SERVICE_NAME": "StackFlowPatcher",
        # What the Lambda runtime sets: Powertools' Tracer is live and the X-Ray SDK works in
        # its Lambda mode (a facade segment from _X_AMZN_TRACE_ID, no sampling-rule poller and
        # no X-Ray clients of its own); segments go by UDP to an address nobody listens on.
        "LAMBDA_TASK_ROOT": str(ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": "StackFlowPatcher",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "_X_AMZN_TRACE_ID": (
            "Root=1-674e0b2c-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1"
        ),
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }
