"""SPEC section 12, ``max_lag_ms`` on Aurora: the lag is read from ``aurora_replica_status()``
(``replica_lag_in_msec`` of every row but the writer's, ``MASTER_SESSION_ID``).

Aurora cannot run here, so the database gets a stand-in ``public.aurora_replica_status()``
with the columns the product reads, fed from a table the test sets; everything else is real
(the engine, the backfill's query, PostgreSQL). The writer's own row reports a lag far above
``max_lag_ms``, which must be ignored. The test moves the replica's lag from the backfill's
own events (called on the engine's thread), so what ran before and after each move is exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from patcher.app.commands import Invocation, execute
from patcher.app.config import Config
from patcher.core.models import Request

pytestmark = pytest.mark.db

ROWS, BATCH, MAX_LAG_MS = 50_000, 10_000, 500
STAND_IN = """
CREATE TABLE aurora_lag (session_id text NOT NULL, lag real);
INSERT INTO aurora_lag VALUES ('MASTER_SESSION_ID', 99999), ('reader-a', 900), ('reader-b', 20);
CREATE FUNCTION public.aurora_replica_status()
RETURNS TABLE (server_id text, session_id text, replica_lag_in_msec real)
LANGUAGE sql AS $$ SELECT 'instance-' || session_id, session_id, lag FROM public.aurora_lag $$;
"""


def test_the_backfill_waits_while_an_aurora_reader_lags(pg_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE big (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0)")
        conn.execute(f"INSERT INTO big (id) SELECT g FROM generate_series(1, {ROWS}) g")
        conn.execute("ANALYZE big")
        conn.execute(STAND_IN)
    (tmp_path / "1_bump.up.sql").write_text(
        f"-- patcher:backfill batch_rows={BATCH} max_lag_ms={MAX_LAG_MS}\n"
        "UPDATE big SET n = n + 1;\n"
    )
    events: list[tuple[str, dict[str, Any]]] = []
    done_when_lowered: list[int] = []

    with psycopg.connect(pg_dsn, autocommit=True) as side:

        def set_lag(ms: int) -> None:
            side.execute("UPDATE aurora_lag SET lag = %s WHERE session_id = 'reader-a'", (ms,))

        def sink(name: str, fields: dict[str, Any]) -> None:
            events.append((name, fields))
            if name == "backfill_waiting":  # what had committed when the reader caught up
                done = side.execute("SELECT count(*) FROM big WHERE n = 1").fetchone()
                done_when_lowered.append(int(done[0]) if done else -1)
                set_lag(100)
            elif name == "backfill_range" and fields["ranges_done"] == 2:
                set_lag(800)  # the reader falls behind again between ranges

        config = Config(source=str(tmp_path), database_url=pg_dsn)
        invocation = Invocation(request_id="aurora-lag", conninfo=lambda: pg_dsn, events=sink)
        result = execute(Request("migrate"), config, invocation).to_dict()

    assert result["status"] == "applied", result
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT n, count(*) FROM big GROUP BY n").fetchall() == [(1, ROWS)]
    waiting = [f for name, f in events if name == "backfill_waiting"]
    assert [(f["lag_ms"], f["max_lag_ms"]) for f in waiting] == [(900, 500), (800, 500)]
    assert done_when_lowered == [0, 2 * BATCH]  # no range ran while the reader lagged
    order = [name for name, _ in events if name.startswith("backfill_wait")]
    assert order == ["backfill_waiting", "backfill_waited"] * 2
