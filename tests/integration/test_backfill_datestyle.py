"""A backfill over a date/time key resumed by a session with another ``DateStyle`` (SPEC 12:
never a range twice, none skipped).

The checkpoint keeps the last key done as text. A run that stops part way (here: the Lambda
clock, ``partial``) under ``DateStyle = 'SQL, DMY'`` and a run that resumes under ``'SQL, MDY'``
(a Lambda and an engineer's CLI with ``PGDATESTYLE`` set, say) must read that text as the same
instant: the key is written in ISO 8601, which every DateStyle reads alike. The oracle: the
backfill increments a counter, so a row done twice reads 2 and a row skipped reads 0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from patcher.app.commands import Invocation, execute
from patcher.app.config import Config
from patcher.core.models import Request

pytestmark = pytest.mark.db

ROWS, BATCH = 3_000, 500


def _with_datestyle(dsn: str, style: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, options=f"-c DateStyle={style.replace(' ', '')}")


def _run(dsn: str, source: Path, stop_after: int | None) -> dict[str, Any]:
    done: list[int] = []

    def sink(name: str, fields: dict[str, Any]) -> None:
        if name == "backfill_range":
            done.append(fields["ranges_done"])

    def time_left_ms() -> int:  # the clock runs out after ``stop_after`` ranges
        return 1 if stop_after is not None and len(done) >= stop_after else 600_000

    invocation = Invocation(
        request_id="datestyle", conninfo=lambda: dsn, events=sink, time_left_ms=time_left_ms
    )
    return execute(Request("migrate"), Config(source=str(source)), invocation).to_dict()


@pytest.mark.parametrize("key_type", ["timestamptz", "timestamp", "date"])
def test_a_resume_under_another_datestyle_runs_every_row_once(
    pg_dsn: str, tmp_path: Path, key_type: str
) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE ev (at {key_type} PRIMARY KEY, n int NOT NULL DEFAULT 0)")
        step = "1 day" if key_type == "date" else "1 day 1 hour 1 second"
        conn.execute(
            f"INSERT INTO ev (at) SELECT timestamp '2020-01-01 00:00:00' + g * interval '{step}' "
            f"FROM generate_series(1, {ROWS}) g"
        )
        conn.execute("ANALYZE ev")
    (tmp_path / "1_bump.up.sql").write_text(
        f"-- patcher:backfill batch_rows={BATCH}\nUPDATE ev SET n = n + 1;\n"
    )
    first = _run(_with_datestyle(pg_dsn, "SQL, DMY"), tmp_path, stop_after=2)
    assert first["status"] == "partial", first
    assert first["progress"]["rows_done"] == 2 * BATCH
    second = _run(_with_datestyle(pg_dsn, "SQL, MDY"), tmp_path, stop_after=None)
    assert second["status"] == "applied", second
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT n, count(*) FROM ev GROUP BY n").fetchall() == [(1, ROWS)]
