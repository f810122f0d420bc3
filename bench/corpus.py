"""Benchmark 6, a real-world shaped corpus: ~250 migrations of mixed size, from S3, by a fresh
process through ``lambda_handler``, against one psql process applying the same files.

The corpus (fixed seed): wide tables (20-40 columns, defaults, checks) with their indexes,
PL/pgSQL functions and triggers with ``$$`` bodies, views over earlier tables, data loads and
updates of a few thousand rows, column additions with comments, and a few no-transaction
``CREATE INDEX CONCURRENTLY``. moto's ThreadedMotoServer serves S3 over HTTP from this process
(its request handling shares this process's GIL, not the child's). StackFlowPatcher runs as a
new ``python`` process that imports ``patcher.aws.handler`` and calls ``lambda_handler`` once (the
cold start of a Lambda container, interpreter start included), with the variables the Lambda
runtime sets (so tracing is live, as in the deployed function; until 2026-12-02 the child ran
without them and the X-Ray SDK started its off-Lambda sampler, two X-Ray clients, ~0.2 s);
psql gets the same files as one stream, each transactional file in its own transaction with a
history insert, like the apply benchmark's floor.
"""

from __future__ import annotations

import hashlib
import logging
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from moto.server import ThreadedMotoServer

from bench import tools
from bench.common import ROOT, Settings, Table, cluster, database, median, ratio, timed
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
    "sys.exit(0 if result['status'] == 'applied' else "
    "f\"{result['status']}: {json.dumps(result['error'])[:600]}\")\n"
)


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


def run(settings: Settings) -> Table:
    n = 60 if settings.smoke else 250
    reps = settings.reps(5)
    files = corpus(n)
    size = sum(len(t) for t in files.values())
    no_tx = sum(t.startswith(NO_TX) for t in files.values())
    table = Table(
        "corpus",
        f"6. Real-world shaped corpus: {n} mixed migrations ({no_tx} no-transaction), from S3",
        ["case", "median s", "x psql", "runs"],
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    times: dict[str, list[float]] = {"psql": [], "patcher": []}
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = make_client(endpoint)
        bucket = S3Bucket(f"bench-corpus-{int(time.time())}", client)
        client.create_bucket(Bucket=bucket.name)
        bucket.put_many({PREFIX + name: text.encode() for name, text in files.items()})
        with cluster(settings) as srv, tempfile.TemporaryDirectory(prefix="bench-corpus-") as tmp:
            stream = Path(tmp) / "corpus.sql"
            stream.write_text(psql_stream(files))
            psql = [tools.psql(srv.bin_dir), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
            for _ in range(reps):  # interleaved: drift hits both
                with database(srv) as url:
                    args = [*psql, "-d", url, "-f", str(stream)]
                    times["psql"].append(timed(lambda a=args: _check(a, tools.clean_env())))
                with database(srv) as url:
                    env = {**tools.clean_env(), **_lambda_env(endpoint, bucket.name, url)}
                    args = [sys.executable, "-c", HANDLER]
                    times["patcher"].append(timed(lambda a=args, e=env: _check(a, e)))
    finally:
        server.stop()
    floor = median(times["psql"])
    table.add("psql (one process, local files)", floor, 1.0, reps)
    ours = median(times["patcher"])
    table.add("StackFlowPatcher (fresh process, lambda_handler, S3)", ours, ratio(ours, floor),
              reps)  # fmt: skip
    table.target("corpus: StackFlowPatcher / psql", ours / floor, 1.3)
    table.notes.append(f"corpus: {size / 1000:.0f} kB of SQL; the patcher process includes "
                       "interpreter start, imports, S3 listing and reads over HTTP")  # fmt: skip
    table.raw = {"times": times, "bytes": size}
    return table


def _lambda_env(endpoint: str, bucket: str, url: str) -> dict[str, str]:
    return {
        "PATCHER_SOURCE": f"s3://{bucket}/{PREFIX}",
        "PATCHER_DATABASE_URL": url,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
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
