"""SPEC section 12 and 7 item 5: kill -9 the CLI at 20 random (seeded) points of a
1,000,000-row backfill, then run until done: the backfill adds 1 to a counter column, so a
range run twice (or lost) would show; every row ends at exactly 1, nothing dirty."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.faultkit import env_without_patcher
from tests.fixtures.engine import REPO, query

pytestmark = [pytest.mark.db, pytest.mark.slow]

ROWS = 1_000_000
KILLS = 20
SEED = 30


def _cli(dsn: str, source: Path) -> subprocess.Popen[bytes]:
    env = {
        **env_without_patcher(),
        "PATCHER_DATABASE_URL": dsn,
        "PATCHER_SOURCE": str(source),
        "PATCHER_LOCK_WAIT_SECONDS": "60",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "patcher.cli", "migrate", "--json"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _connected(dsn: str, proc: subprocess.Popen[bytes]) -> None:
    sql = "SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'stackflowpatcher%%'"
    deadline = time.monotonic() + 30
    while not query(dsn, sql):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the CLI never connected"
        time.sleep(0.01)


def _ranges(dsn: str) -> int:
    if not query(dsn, "SELECT to_regclass('schema_migrations_bf')")[0][0]:
        return 0
    rows = query(dsn, "SELECT ranges_done FROM schema_migrations_bf WHERE version = 2")
    return int(rows[0][0]) if rows else -1  # -1: done (the row goes with the last range)


def test_kill_9_at_twenty_random_points_then_every_row_is_done_exactly_once(
    pg_dsn: str, tmp_path: Path
) -> None:
    query(pg_dsn, "CREATE TABLE big (id bigint PRIMARY KEY, n integer NOT NULL DEFAULT 0)")
    query(pg_dsn, f"INSERT INTO big (id) SELECT g FROM generate_series(1, {ROWS}) g")
    query(pg_dsn, "ANALYZE big")
    (tmp_path / "1_first.up.sql").write_text("CREATE TABLE marker (id int);\n")
    # Each range also waits 0.2 s (an InitPlan, once per statement): the 200 ranges then take
    # at least 40 s, more than the 20 kills' 27 s of run time (seed 30) on however fast a
    # machine, so every kill lands in a run that is still going (a quiet machine did 5,000
    # rows in ~30 ms and finished the backfill before the last kills).
    (tmp_path / "2_bump.up.sql").write_text(
        "-- patcher:backfill batch_rows=5000\n"
        "UPDATE big SET n = n + 1 WHERE (SELECT 1 FROM pg_sleep(0.2)) = 1;\n"
    )
    rng = random.Random(SEED)
    seen: list[int] = []
    for _ in range(KILLS):
        proc = _cli(pg_dsn, tmp_path)
        _connected(pg_dsn, proc)  # then anywhere in its run: the lock, the plan, the ranges
        time.sleep(rng.uniform(0.0, 2.5))  # a range takes 0.2 s and its 5,000 rows
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, "the run ended before its kill"
        seen.append(_ranges(pg_dsn))
    finals = 0
    while not query(pg_dsn, "SELECT 1 FROM schema_migrations WHERE version = 2"):
        proc = _cli(pg_dsn, tmp_path)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (out[-500:], err[-500:])
        finals += 1
        assert finals <= 2
    counts = query(pg_dsn, "SELECT n, count(*) FROM big GROUP BY n")
    assert counts == [(1, ROWS)], f"a range ran twice or never: {counts}"
    assert query(pg_dsn, "SELECT version, dirty FROM schema_migrations ORDER BY 1") == [
        (1, False),
        (2, False),
    ]
    inside = sum(1 for s in seen if s > 0)
    print(f"kill -9 points: checkpoint ranges seen after each kill {seen}; then {finals} runs")
    assert inside >= KILLS // 2, f"too few kills landed inside the backfill: {seen}"
