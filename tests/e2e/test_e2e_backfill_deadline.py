"""SPEC section 12: a backfill cut by the Lambda deadline, through the real handler with short
deadlines, at 5 points: each invocation ends ``partial`` (never ``DeadlineExceeded``) with the
version first in ``pending`` and ``progress``, the next carries on, and the last is done with
every row's counter at exactly 1."""

from __future__ import annotations

import time

import pytest

from patcher.dev.devrun import LambdaContext
from tests.e2e.e2ekit import LambdaEnv, event
from tests.fixtures.engine import query

pytestmark = [pytest.mark.db, pytest.mark.slow]

ROWS = 200_000
# Each range also waits 0.5 s (an InitPlan, once per statement), so that the 10 ranges take
# longer than any of these deadlines leaves for them (at most 3 s) on however fast a machine:
# without it a quiet machine ran the whole backfill in one invocation and nothing was cut.
BUMP = (
    "-- patcher:backfill batch_rows=20000\n"
    "UPDATE big SET n = n + 1 WHERE (SELECT 1 FROM pg_sleep(0.5)) = 1;\n"
)
# Each range sleeps 2 s (an InitPlan, once per statement): with 3.6 s before the watchdog's
# cut (3 s before the deadline), the second range of an invocation starts about 1.5 s before
# the cut (a range may start while the cut is at least 1 s away) and is cut inside.
SLOW = (
    "-- patcher:backfill batch_rows=10000\n"
    "UPDATE big SET n = n + 1 WHERE (SELECT 1 FROM pg_sleep(2)) = 1;\n"
)
POINTS = [
    (5_000, BUMP, ROWS), (5_400, BUMP, ROWS), (6_300, BUMP, ROWS), (7_000, BUMP, ROWS),
    (6_600, SLOW, 30_000),
]  # fmt: skip


class FromFirstRead(LambdaContext):
    """A Lambda clock that starts when the run first reads it: the S3 listing and the
    connection on this shared, loaded test machine do not eat the short deadline."""

    def get_remaining_time_in_millis(self) -> int:
        if not getattr(self, "_read", False):
            self._read, self._started = True, time.monotonic()
        return super().get_remaining_time_in_millis()


@pytest.mark.parametrize(("timeout_ms", "script", "rows"), POINTS)
def test_cut_by_the_deadline_partial_then_done(
    lambda_env: LambdaEnv, monkeypatch: pytest.MonkeyPatch, timeout_ms: int, script: str, rows: int
) -> None:
    monkeypatch.setenv("PATCHER_TIME_MARGIN_SECONDS", "1")
    query(lambda_env.dsn, "CREATE TABLE big (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0)")
    query(lambda_env.dsn, f"INSERT INTO big (id) SELECT g FROM generate_series(1, {rows}) g")
    lambda_env.put("0001_bump.up.sql", script)
    lambda_env.put("0002_after.up.sql", "CREATE TABLE after_it (id int);\n")
    results = []
    while True:
        result = lambda_env.invoke(event("migrate"), FromFirstRead(timeout_ms))
        results.append(result)
        assert result["ok"] and result["error"] is None, result
        if result["status"] == "applied":
            break
        assert result["status"] == "partial"
        assert [p["version"] for p in result["pending"]] == [1, 2]
        assert set(result["progress"]) == {"rows_done", "rows_estimated", "ranges_done"}
        assert len(results) < 30
    assert len(results) >= 2 and results[0]["status"] == "partial"
    done = [r["progress"]["ranges_done"] for r in results if r["status"] == "partial"]
    assert done == sorted(done) and done[-1] > 0
    assert query(lambda_env.dsn, "SELECT n, count(*) FROM big GROUP BY n") == [(1, rows)]
    assert query(lambda_env.dsn, "SELECT version, dirty FROM schema_migrations ORDER BY 1") == [
        (1, False),
        (2, False),
    ]
    cut = sum(any("cut a range" in w for w in r["warnings"]) for r in results)
    print(f"deadline {timeout_ms} ms: {len(results)} invocations, {cut} cut inside a range")
    if script is SLOW:  # every invocation but the last: one range done, the next one cut
        assert cut >= 2, [r["warnings"] for r in results]
