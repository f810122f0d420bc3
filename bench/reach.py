"""Issue 33: an up-to-date deploy invocation, before and after the writer checks, same run.

``after`` is the shipped path: one connection attempt within the budget (``patcher.db.reach``),
its probe (writer check + client check in one query) and ``check_writable`` answered from it.
``before`` is the path it replaced, rebuilt here: ``connection.connect`` (the client check in
its own query) and ``check_writable`` asking the server after the lock. Both run through the
real ``lambda_handler`` on a database with every migration applied, alternately (drift hits
both alike), directly and through a TCP hop (``CrashProxy`` counting: a network's round
trips cost more than loopback's); client messages per invocation are counted on the hop.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import Settings, Table, cluster, database, median, quiet_stdout, timed


@contextlib.contextmanager
def before() -> Iterator[None]:
    """The connect and writer check as they were before issue 33."""
    from patcher.db import backend, connection

    real = backend.PostgresBackend.connect

    def connect(cls: Any, conninfo: str, **kwargs: Any) -> Any:
        kwargs.pop("reach", None)
        own = {
            k: kwargs.pop(k) for k in ("schema", "table", "request_id", "invoked_by") if k in kwargs
        }
        conn = connection.connect(conninfo, iam_auth=kwargs.pop("iam_auth", False), **kwargs)
        return cls(conn, **own)  # no probe: check_writable queries the server

    backend.PostgresBackend.connect = classmethod(connect)  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        backend.PostgresBackend.connect = real  # type: ignore[method-assign]


def _invoke(expect: tuple[str, ...] = ("up_to_date",)) -> dict[str, Any]:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")  # before the handler's Logger
    from patcher.aws.handler import lambda_handler
    from tests.faults.faultkit import FakeContext

    with quiet_stdout():  # the EMF metrics line
        result = lambda_handler({"action": "migrate"}, FakeContext())
    if result["status"] not in expect:
        raise RuntimeError(f"not up to date: {result}")
    return result


def run(settings: Settings) -> Table:
    from tests.faults.crashkit import CrashProxy

    n, reps = (10, 20) if settings.smoke else (50, settings.reps(200))
    table = Table(
        "reach",
        f"7. Up-to-date deploy invocation ({n} applied), before and after the writer checks",
        ["path", "case", "median ms", "x before", "client messages", "runs"],
    )
    saved = {k: os.environ.get(k) for k in ("PATCHER_SOURCE", "PATCHER_DATABASE_URL")}
    with cluster(settings) as server, database(server) as url, tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp)
        for v in range(1, n + 1):
            (source / f"{v}_t{v}.up.sql").write_text(f"CREATE TABLE t{v} (id int);\n")
        os.environ["PATCHER_SOURCE"] = str(source)
        try:
            with CrashProxy.for_dsn(url, lifetime=3600, max_connections=10**6) as hop:
                for path, dsn in (("loopback", url), ("tcp hop", hop.dsn(url))):
                    os.environ["PATCHER_DATABASE_URL"] = dsn
                    _invoke(("applied", "up_to_date"))  # then every invocation is up to date
                    times: dict[str, list[float]] = {"before": [], "after": []}
                    for _ in range(reps):
                        with before():
                            times["before"].append(timed(_invoke))
                        times["after"].append(timed(_invoke))
                    messages = {}
                    for case in ("before", "after"):
                        count = CrashProxy.for_dsn(url)
                        os.environ["PATCHER_DATABASE_URL"] = count.dsn(url)
                        with count, before() if case == "before" else contextlib.nullcontext():
                            _invoke()
                            first = count.wait_first()
                        messages[case] = first.count if first else None
                    base = median(times["before"])
                    for case, values in times.items():
                        m = median(values)
                        table.add(path, case, m * 1000, m / base, messages[case], len(values))
                    table.raw[path] = times
                    table.target(f"after / before ({path})", median(times["after"]) / base, 1.05)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    table.notes.append(
        "after: probe (pg_is_in_recovery, transaction_read_only, server address, and the PG 14+ "
        "client check) in the first query, check_writable from it; before: the client check "
        "alone, then a writer query after the lock. Client messages include the SCRAM exchange "
        "where there is one and the Terminate."
    )
    return table
