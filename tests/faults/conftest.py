"""Fixtures for the fault-injection suite (GitHub issue 6): attacks on the real PostgreSQL and
moto's HTTP S3, and a leak scan over everything the suite prints, logs or returns.

- ``own_cluster``: a throwaway cluster of our own (password auth for role ``app``), for faults
  that would hurt the session's shared server: restarts, authentication, standbys.
- ``s3_proxy``: a small HTTP proxy in front of moto (``faultkit.FaultProxy``) that injects
  500s, 503 SlowDown, connection resets and truncated bodies, runs callbacks between requests
  and records every request as it arrived on the wire; ``AWS_ENDPOINT_URL_S3`` points at it.
- Leak scan: every test's captured stdout/stderr/log sections, every log record and every
  result built are searched for the suite's secrets (``faultkit.SECRETS``); a hit fails it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults.faultkit import (
    SESSION_TOKEN,
    FaultProxy,
    LeakScan,
    OwnCluster,
    find_leaks,
    start_own_cluster,
)
from tests.fixtures.postgres import CLUSTER_OS_USER, PgServer, find_bin_dir


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Fail any phase whose captured output (stdout, stderr, log) carries a secret."""
    outcome = yield
    report = outcome.get_result()
    leaks = find_leaks("\n".join(content for _, content in report.sections))
    if leaks and report.outcome != "failed":
        report.outcome = "failed"
        report.longrepr = f"secret(s) leaked into captured output: {leaks!r}"


class _Recorder(logging.Handler):
    def __init__(self, scan: LeakScan) -> None:
        super().__init__(logging.DEBUG)
        self.scan = scan

    def emit(self, record: logging.LogRecord) -> None:
        self.scan.add(f"{record.getMessage()} {record.__dict__!r}")


@pytest.fixture(autouse=True)
def leak_scan(monkeypatch: pytest.MonkeyPatch) -> Iterator[LeakScan]:
    """Record every log record and result of the test; fail it if one carries a secret."""
    from patcher.app.result import RunResult

    scan = LeakScan()
    real_to_dict = RunResult.to_dict

    def to_dict(self: RunResult, *args: Any, **kwargs: Any) -> dict[str, Any]:
        result = real_to_dict(self, *args, **kwargs)
        scan.add(json.dumps(result, default=str, ensure_ascii=False))
        return result

    monkeypatch.setattr(RunResult, "to_dict", to_dict)
    recorder = _Recorder(scan)
    loggers = [logging.getLogger(), logging.getLogger("stackflowpatcher")]
    for lg in loggers:
        lg.addHandler(recorder)
    try:
        yield scan
    finally:
        for lg in loggers:
            lg.removeHandler(recorder)
    scan.check()


@pytest.fixture
def aws(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``aws_env`` with a recognisable session token (scanned for leaks) and Secrets Manager
    on the moto server too."""
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", aws_env)
    return aws_env


@pytest.fixture(scope="session")
def own_cluster(pg_server: PgServer) -> Iterator[OwnCluster]:
    """A second throwaway cluster, ours to restart and replicate."""
    bin_dir = pg_server.bin_dir or find_bin_dir(os.environ.get("PATH", ""))
    if bin_dir is None:
        pytest.fail("the fault suite needs initdb/pg_ctl to start a cluster it may restart")
    cluster = start_own_cluster(bin_dir, CLUSTER_OS_USER if os.geteuid() == 0 else None)
    yield cluster
    cluster.server.stop()


@pytest.fixture
def own_db(own_cluster: OwnCluster) -> Iterator[str]:
    """A fresh database on ``own_cluster``, as the password-authenticated role ``app``."""
    name = own_cluster.server.create_database()
    yield own_cluster.app_dsn(name)
    own_cluster.reset_admin()
    own_cluster.server.drop_database(name)


@pytest.fixture
def s3_proxy(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of moto; clients made the standard way go through it."""
    proxy = FaultProxy(aws)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
    yield proxy
    proxy.close()
