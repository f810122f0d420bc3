"""Benchmark 2, S3 scale: thousands of objects under a prefix, all but 10 already applied.

moto's ThreadedMotoServer serves S3 on 127.0.0.1 (in this process: its CPU shares our GIL,
as a real S3 would not). The first N-10 versions are applied once through the engine into a
template database; each run copies it, then times a dry run and a migrate of the last 10,
counting S3 requests by operation with botocore's ``before-call`` hook on the client passed in.
The baseline is the least any tool could do: every list page plus a GET of the 10 pending files.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from moto.server import ThreadedMotoServer

from bench.common import Settings, Table, cluster, database, median, ratio, timed
from patcher.app.commands import Invocation, execute
from patcher.app.config import Config
from patcher.core.models import Request
from tests.fixtures.s3 import S3Bucket, count_requests, make_client

PREFIX = "migrations/"
PENDING = 10


def _engine(request: Request, url: str, client: Any, bucket: str) -> dict[str, Any]:
    config = Config(source=f"s3://{bucket}/{PREFIX}", database_url=url)
    invocation = Invocation(
        request_id="bench-s3", invoked_by="bench", conninfo=lambda: url, s3_client=client
    )
    result = execute(request, config, invocation).to_dict()
    if not result["ok"]:
        raise RuntimeError(f"{request.action} failed: {result['error']}")
    return result


def _least_possible(client: Any, bucket: str, pending: list[str]) -> None:
    """Every list page, then the pending files: what any runner must at least do."""
    for _page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=PREFIX, Delimiter="/"
    ):
        pass
    with ThreadPoolExecutor(len(pending)) as pool:  # in parallel, as the engine reads
        list(pool.map(lambda key: client.get_object(Bucket=bucket, Key=key)["Body"].read(),
                      pending))  # fmt: skip


def run(settings: Settings) -> Table:
    total = 1100 if settings.smoke else 5000
    applied = total - PENDING
    reps = settings.reps(3)
    table = Table(
        "s3", f"2. S3 scale: {total} objects under a prefix, {applied} applied, {PENDING} pending",
        ["case", "median s", "x least", "ListObjectsV2", "GetObject", "other", "runs"],
    )  # fmt: skip
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = make_client(f"http://{host}:{port}")
        bucket = S3Bucket(f"bench-{int(time.time())}", client)
        client.create_bucket(Bucket=bucket.name)
        keys = {i: f"{PREFIX}{i:05d}_create_s_{i}.up.sql" for i in range(1, total + 1)}
        bucket.put_many({k: f"CREATE TABLE s_{i} (id int);\n".encode() for i, k in keys.items()})
        pending_keys = [keys[i] for i in range(applied + 1, total + 1)]
        with cluster(settings) as srv:
            base = srv.create_database()
            counts = count_requests(client)
            setup = timed(lambda: _engine(Request("migrate", target=applied),
                                          srv.dsn_for(base), client, bucket.name))  # fmt: skip
            lists, gets = counts["ListObjectsV2"], counts["GetObject"]
            other = sum(counts.values()) - lists - gets
            table.add(
                f"first deploy: migrate {applied} (setup)", setup, None, lists, gets, other, 1
            )
            samples: dict[str, list[float]] = {"least": [], "dry": [], "migrate": []}
            seen: dict[str, Counter[str]] = {}
            for _ in range(reps):
                samples["least"].append(
                    timed(lambda: _least_possible(client, bucket.name, pending_keys))
                )
                with database(srv, template=base) as url:
                    for case, request in (("dry", Request("migrate", dry_run=True)),
                                          ("migrate", Request("migrate"))):  # fmt: skip
                        counts.clear()
                        started = time.perf_counter()
                        result = _engine(request, url, client, bucket.name)
                        samples[case].append(time.perf_counter() - started)
                        if len(result["migrations"]) != PENDING:
                            raise RuntimeError(f"{case}: {len(result['migrations'])} steps")
                        seen[case] = Counter(counts)
            srv.drop_database(base)
    finally:
        server.stop()
    pages = math.ceil(total / 1000)
    least = median(samples["least"])
    table.add("least possible (bare client)", least, 1.0, pages, PENDING, 0, reps)
    for case, label in (("dry", "dry run"), ("migrate", f"migrate the last {PENDING}")):
        c = seen[case]
        other = sum(c.values()) - c["ListObjectsV2"] - c["GetObject"]
        m = median(samples[case])
        table.add(label, m, ratio(m, least), c["ListObjectsV2"], c["GetObject"], other, reps)
        table.target(f"{label}: GETs beyond {PENDING} pending", c["GetObject"] - PENDING, 0)
        table.target(f"{label}: pages beyond ceil({total}/1000)", c["ListObjectsV2"] - pages, 0)
    table.raw = {"samples": samples, "counts": {k: dict(v) for k, v in seen.items()}}
    table.notes.append("the moto server runs in this process: its request handling shares the GIL")
    return table
