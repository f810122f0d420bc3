"""Aurora as it really behaves (issue 33), through the real handler and ``AuroraProxy``: a
Serverless resume that holds the first connection, a writer that refuses connections while it
fails over, a cluster endpoint that still names a reader (a real streaming standby), and
outages longer than the connection budget. Each ends in a run that applies everything exactly
once with the wait in the result, or in a clear ``DatabaseUnavailable`` with nothing applied.

The fast tests use scaled figures; the ``slow`` ones the issue's own (15 s resume, 20 s
outage, 10 s stale endpoint, 120 s outage against the default 60 s budget)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from patcher.aws.handler import lambda_handler
from tests.faults.aurorakit import AuroraProxy
from tests.faults.faultkit import FakeContext, OwnCluster
from tests.fixtures.engine import MigrationDir, query, tables
from tests.fixtures.standby import Standby, streaming_standby, wait_replayed

VERSIONS = (1, 2, 3)


@pytest.fixture(scope="module")
def standby(own_cluster: OwnCluster) -> Iterator[Standby]:
    """A streaming replica of the suite's own cluster: the reader a stale endpoint names."""
    with streaming_standby(own_cluster.server, own_cluster.run_as) as replica:
        yield replica


def corpus(mdir: MigrationDir) -> None:
    """Three migrations; each adds a row to ``hits``: applied twice would show."""
    mdir.pair("1", "hits", "CREATE TABLE hits (version int);\nINSERT INTO hits VALUES (1);")
    mdir.pair("2", "two", "CREATE TABLE two (id int);\nINSERT INTO hits VALUES (2);")
    mdir.pair("3", "three", "CREATE TABLE three (id int);\nINSERT INTO hits VALUES (3);")


def proxy_for(dsn: str, standby: Standby | None = None, **kwargs: Any) -> AuroraProxy:
    parts = urlsplit(dsn)
    reader = ("127.0.0.1", standby.port) if standby else None
    return AuroraProxy((parts.hostname or "127.0.0.1", parts.port or 5432), standby=reader,
                       lifetime=600, **kwargs)  # fmt: skip


def invoke(
    monkeypatch: pytest.MonkeyPatch, source: Path, dsn: str, budget: float | None = None
) -> tuple[dict[str, Any], float]:
    for name in ("PATCHER_DB_SECRET_ARN", "PATCHER_SCHEMA", "PATCHER_TABLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATCHER_SOURCE", str(source))
    monkeypatch.setenv("PATCHER_DATABASE_URL", dsn)
    if budget is None:
        monkeypatch.delenv("PATCHER_CONNECT_BUDGET_SECONDS", raising=False)
    else:
        monkeypatch.setenv("PATCHER_CONNECT_BUDGET_SECONDS", str(budget))
    started = time.monotonic()
    result = lambda_handler({"action": "migrate"}, FakeContext())
    return result, time.monotonic() - started


def applied_once(dsn: str) -> None:
    """Every version applied, each exactly once, and the audit log says so once."""
    assert query(dsn, "SELECT version FROM schema_migrations ORDER BY 1") == [
        (v,) for v in VERSIONS
    ]
    assert query(dsn, "SELECT version, count(*) FROM hits GROUP BY 1 ORDER BY 1") == [
        (v, 1) for v in VERSIONS
    ]
    logged = query(
        dsn,
        "SELECT version, count(*) FROM schema_migrations_log WHERE outcome = 'applied' "
        "GROUP BY 1 ORDER BY 1",
    )
    assert logged == [(v, 1) for v in VERSIONS]


def nothing_applied(dsn: str) -> None:
    assert tables(dsn) == set(), tables(dsn)


def waited(result: dict[str, Any], seconds: float) -> None:
    assert result["database_wait_ms"] >= seconds * 1000 - 100, result
    assert any("answered only after" in w for w in result["warnings"]), result["warnings"]


# --------------------------------------------------------------------------- resume


@pytest.mark.parametrize(
    "hold", [pytest.param(3.0, id="3s"), pytest.param(15.0, id="15s", marks=pytest.mark.slow)]
)
def test_a_resuming_cluster_is_waited_for(
    own_db: str, mdir: MigrationDir, monkeypatch: pytest.MonkeyPatch, hold: float
) -> None:
    """Serverless v2 from 0 ACUs: connections are held until it has resumed. 15 s is more
    than one attempt's 10 s connect timeout: the second attempt is held to the end."""
    corpus(mdir)
    with proxy_for(own_db) as proxy:
        proxy.resume(hold)
        result, took = invoke(monkeypatch, mdir.path, proxy.dsn(own_db))
    assert result["status"] == "applied" and result["ok"] is True, result
    assert result["database_wait_ms"] >= hold * 1000 - 100
    assert took < hold + 5
    assert 0 in proxy.did("held")  # the first connection was held (the log is in end order)
    if hold > 10:
        waited(result, hold)
        assert len(proxy.did("held")) == 2, proxy.log
    applied_once(own_db)


# --------------------------------------------------------------------------- writer outage


@pytest.mark.parametrize(
    "down", [pytest.param(4.0, id="4s"), pytest.param(20.0, id="20s", marks=pytest.mark.slow)]
)
def test_a_writer_outage_within_the_budget_is_waited_out(
    own_db: str, mdir: MigrationDir, monkeypatch: pytest.MonkeyPatch, down: float
) -> None:
    corpus(mdir)
    with proxy_for(own_db) as proxy:
        proxy.outage(down)
        result, took = invoke(monkeypatch, mdir.path, proxy.dsn(own_db))
    assert result["status"] == "applied", result
    waited(result, down)
    assert took < down + 7  # the backoff is capped at 5 s
    assert len(proxy.did("refused")) >= 3, proxy.log
    applied_once(own_db)


@pytest.mark.parametrize(
    ("down", "budget"),
    [
        pytest.param(120.0, 5.0, id="120s-budget-5s"),
        pytest.param(120.0, None, id="120s-default-budget", marks=pytest.mark.slow),
    ],
)
def test_an_outage_past_the_budget_is_database_unavailable_and_nothing_applied(
    own_db: str,
    mdir: MigrationDir,
    monkeypatch: pytest.MonkeyPatch,
    down: float,
    budget: float | None,
) -> None:
    corpus(mdir)
    limit = budget or 60.0
    with proxy_for(own_db) as proxy:
        proxy.outage(down)
        result, took = invoke(monkeypatch, mdir.path, proxy.dsn(own_db), budget)
    assert result["status"] == "failed" and result["ok"] is False
    assert result["error"]["type"] == "DatabaseUnavailable"
    message = result["error"]["message"]
    assert "cannot connect to PostgreSQL" in message and "attempts over" in message, message
    assert f"PATCHER_CONNECT_BUDGET_SECONDS ({limit:g} s)" in message
    assert limit - 1 <= took <= limit + 2, took
    assert result["database_wait_ms"] <= limit * 1000 + 1000
    assert result["migrations"] == [] and result["current_version"] is None
    nothing_applied(own_db)


# --------------------------------------------------------------------------- stale endpoint


@pytest.mark.parametrize(
    "stale", [pytest.param(3.0, id="3s"), pytest.param(10.0, id="10s", marks=pytest.mark.slow)]
)
def test_a_stale_endpoint_naming_a_reader_is_retried_until_the_writer(
    own_cluster: OwnCluster,
    own_db: str,
    standby: Standby,
    mdir: MigrationDir,
    monkeypatch: pytest.MonkeyPatch,
    stale: float,
) -> None:
    corpus(mdir)
    wait_replayed(own_cluster.server.admin_dsn, standby.dsn(own_db))  # the reader has own_db
    with proxy_for(own_db, standby) as proxy:
        proxy.stale(stale)
        result, took = invoke(monkeypatch, mdir.path, proxy.dsn(own_db))
    assert result["status"] == "applied", result
    waited(result, stale)
    assert took < stale + 7
    assert len(proxy.did("standby")) >= 2 and proxy.did("primary"), proxy.log
    applied_once(own_db)


def test_a_reader_past_the_budget_is_named_and_nothing_is_written(
    own_cluster: OwnCluster,
    own_db: str,
    standby: Standby,
    mdir: MigrationDir,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    corpus(mdir)
    wait_replayed(own_cluster.server.admin_dsn, standby.dsn(own_db))
    with proxy_for(own_db, standby) as proxy:
        proxy.stale(120)
        result, took = invoke(monkeypatch, mdir.path, proxy.dsn(own_db), budget=3)
        status, _ = invoke(monkeypatch, mdir.path, proxy.dsn(own_db), budget=3)
    assert result["status"] == "failed" and result["error"]["type"] == "DatabaseUnavailable"
    message = result["error"]["message"]
    assert "reader, not the writer" in message and "hot standby" in message, message
    assert f"(server 127.0.0.1:{standby.port})" in message  # the host it reached
    assert took < 6
    assert not proxy.did("primary")
    nothing_applied(own_db)
    assert status["status"] == "failed"  # migrate again: the same refusal, nothing written


def test_status_may_read_a_reader(
    own_cluster: OwnCluster,
    own_db: str,
    standby: Standby,
    mdir: MigrationDir,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only a request that writes needs the writer: ``status`` answers from a reader at once."""
    corpus(mdir)
    wait_replayed(own_cluster.server.admin_dsn, standby.dsn(own_db))
    with proxy_for(own_db, standby) as proxy:
        proxy.stale(120)
        monkeypatch.setenv("PATCHER_SOURCE", str(mdir.path))
        monkeypatch.setenv("PATCHER_DATABASE_URL", proxy.dsn(own_db))
        result = lambda_handler({"action": "status"}, FakeContext())
    assert result["status"] == "planned", result
    assert len(proxy.did("standby")) == 1 and result["warnings"] == []


# --------------------------------------------------------------------------- lost early


def test_a_session_lost_before_any_migration_reconnects_and_continues(
    own_db: str, mdir: MigrationDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer fails over between the probe and the first migration: the run
    waits the outage out on a new session and applies everything, once."""
    corpus(mdir)
    with proxy_for(own_db, cut_at=5) as proxy:  # 1-2: SCRAM, 3: the probe
        proxy.refuse_after_cut(3)
        result, _ = invoke(monkeypatch, mdir.path, proxy.dsn(own_db))
    assert proxy.cut is not None
    assert result["status"] == "applied", result
    assert proxy.first is not None and "pg_is_in_recovery" not in str(proxy.first.cut_query)
    assert any("session was lost before any migration started" in w for w in result["warnings"])
    assert result["database_wait_ms"] >= 2500
    applied_once(own_db)
