"""Benchmark 9, schema drift (issue 31): what the snapshot costs a migrate run, and ``drift``.

A database of N schema objects (tables of four columns: each table is eight objects with its
columns, primary key, its index and its privilege row) gets one more migration (an ADD COLUMN),
timed with the snapshot stored in its statement and without (the snapshot switched off, as a
role that cannot read the catalog has it), alternately; then an up-to-date ``migrate`` (nothing
applied: it must not read or write a snapshot) both ways; then ``drift``. The snapshot's size is
PostgreSQL's (``pg_column_size``: compressed, as stored) beside the JSON text's.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import psycopg

from bench.common import Settings, Table, cluster, database, median
from patcher.db.snapshot_sql import aggregate_sql

PER_TABLE = 8  # table, 4 columns, primary key, its index, the table's privilege row


def _make(dsn: str, objects: int) -> None:
    tables = objects // PER_TABLE
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(  # no parameters: psycopg leaves the %s to format()
            f"DO $$ BEGIN FOR i IN 1..{tables} LOOP EXECUTE format('CREATE TABLE t%s (id "
            "bigint PRIMARY KEY, a text, b integer DEFAULT 0, c timestamptz)', i); END LOOP; "
            "END $$"
        )


@contextlib.contextmanager
def _snapshots(on: bool) -> Iterator[None]:
    """Snapshots as shipped, or switched off: none stored (the probe says the catalog is
    unreadable) and no drift check before the run applies."""
    if on:
        yield
        return
    with (
        mock.patch("patcher.db.snapshot_store.probe", return_value="off (bench baseline)"),
        mock.patch("patcher.engine.drift_check.warn_before_apply"),
    ):
        yield


def _run(dsn: str, source: Path, action: str) -> dict[str, Any]:
    from patcher.app.commands import Invocation, execute
    from patcher.app.config import Config
    from patcher.core.models import Request

    config = Config(source=str(source), database_url=dsn)
    invocation = Invocation(request_id="bench", invoked_by="bench", conninfo=lambda: dsn)
    return execute(Request(action), config, invocation).to_dict()  # type: ignore[arg-type]


def _case(dsn: str, objects: int, reps: int, table: Table) -> None:
    _make(dsn, objects)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp)
        applied: dict[bool, list[float]] = {True: [], False: []}
        idle: dict[bool, list[float]] = {True: [], False: []}
        version = 0
        for _ in range(reps):
            for on in (True, False):
                version += 1
                (source / f"{version:04d}_c{version}.up.sql").write_text(
                    f"ALTER TABLE t1 ADD COLUMN c{version} integer;\n"
                )
                with _snapshots(on):
                    started = time.perf_counter()
                    result = _run(dsn, source, "migrate")
                    applied[on].append(time.perf_counter() - started)
                    assert result["status"] == "applied", result["error"]
                    started = time.perf_counter()
                    result = _run(dsn, source, "migrate")
                    idle[on].append(time.perf_counter() - started)
                    assert result["status"] == "up_to_date", result["error"]
            # the last "off" run left the snapshot one version behind: take it again
            (source / f"{version + 1:04d}_again.up.sql").write_text("SELECT 1;\n")
            version += 1
            assert _run(dsn, source, "migrate")["status"] == "applied"
        drift_s = []
        for _ in range(reps):
            started = time.perf_counter()
            result = _run(dsn, source, "drift")
            drift_s.append(time.perf_counter() - started)
            assert result["status"] == "in_sync", result
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT objects, pg_column_size(body), octet_length(body) FROM schema_migrations_snp"
        ).fetchone()
        query_s = []
        for _ in range(reps):  # the snapshot's own statement: the catalog read, aggregated
            started = time.perf_counter()
            conn.execute(aggregate_sql(), {"own": []}).fetchone()
            query_s.append(time.perf_counter() - started)
    assert row is not None
    count, stored, text = row
    added = median(applied[True]) - median(applied[False])
    idle_added = median(idle[True]) - median(idle[False])
    table.add(
        objects, count, round(stored / 1024, 1), round(text / 1024, 1),
        round(median(query_s) * 1000), round(median(applied[True]) * 1000), round(added * 1000),
        round(idle_added * 1000, 1), round(median(drift_s), 2),
    )  # fmt: skip
    table.raw[str(objects)] = {"applied": applied, "idle": idle, "drift": drift_s}
    if objects >= 10_000:
        table.target("drift at 10,000 objects, s", median(drift_s), 30)
        table.target("snapshot at 10,000 objects, bytes stored", stored, 1_000_000)
    table.target(f"up-to-date deploy added at {objects} objects, ms", idle_added * 1000, 50)


def run(settings: Settings) -> Table:
    sizes = (1_000,) if settings.smoke else (1_000, 10_000)
    reps = settings.reps(2 if settings.smoke else 3)
    table = Table(
        "drift",
        "9. Schema drift: the snapshot per migrate run, and drift",
        ["objects", "in snapshot", "stored KiB", "JSON KiB", "snapshot query ms", "migrate ms",
         "snapshot+check add ms", "up-to-date adds ms", "drift s"],
    )  # fmt: skip
    with cluster(settings) as server:
        for objects in sizes:
            with database(server) as dsn:
                _case(dsn, objects, reps, table)
    table.notes.append(
        "migrate: one ADD COLUMN with the snapshot stored in its history statement and the drift "
        "check before it; 'add' is the median with both minus the median without (alternate "
        "runs: on a shared machine the difference is noisy, the snapshot query's own time is "
        "the steadier figure). up-to-date: a migrate with nothing pending (reads and writes no "
        "snapshot)."
    )
    return table
