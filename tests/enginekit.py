"""Helpers for engine tests: a migrations directory, a one-call runner, catalog snapshots."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from patcher.commands import Invocation, execute
from patcher.config import Config
from patcher.core.models import Request

REPO = Path(__file__).resolve().parents[1]
FAST = {"lock_retry_backoff_seconds": 0.05, "lock_poll_seconds": (0.01, 0.05)}


class MigrationDir:
    """A temporary migrations directory written file by file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, name: str, text: str | bytes) -> Path:
        target = self.path / name
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)
        return target

    def pair(self, version: str, description: str, up: str, down: str | None = None) -> None:
        self.write(f"{version}_{description}.up.sql", up)
        if down is not None:
            self.write(f"{version}_{description}.down.sql", down)


Run = Callable[..., dict[str, Any]]


def make_runner(dsn: str, source: str | Path, **config: Any) -> Run:
    """A function running one request like the Lambda would, returning the SPEC result."""
    base = Config(source=str(source), database_url=dsn, lock_wait_seconds=5)
    cfg = dataclasses.replace(base, **config)

    def run(
        action: str,
        *,
        request_id: str = "test",
        tuning: dict[str, Any] | None = None,
        time_left_ms: Callable[[], int] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        invocation = Invocation(
            request_id=request_id,
            invoked_by="pytest",
            conninfo=lambda: dsn,
            tuning={**FAST, **(tuning or {})},
            time_left_ms=time_left_ms,
        )
        return execute(Request(action=action, **fields), cfg, invocation)  # type: ignore[arg-type]

    return run


def query(dsn: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(sql, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def tables(dsn: str) -> set[str]:
    rows = query(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {r[0] for r in rows}


def history(dsn: str) -> list[tuple[int, bool]]:
    return [(r[0], r[1]) for r in query(
        dsn, "SELECT version, dirty FROM schema_migrations ORDER BY version")]  # fmt: skip


def schema_snapshot(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """Everything a migration can create in ``public``, in a comparable form."""
    queries = {
        "columns": """SELECT table_name, column_name, data_type, is_nullable, column_default
                        FROM information_schema.columns WHERE table_schema = 'public'""",
        "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
        "constraints": """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
                            FROM pg_constraint WHERE connamespace = 'public'::regnamespace""",
        "triggers": """SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
                         FROM pg_trigger WHERE NOT tgisinternal""",
        "functions": """SELECT proname, pg_get_functiondef(oid) FROM pg_proc
                          WHERE pronamespace = 'public'::regnamespace""",
        "types": """SELECT typname FROM pg_type WHERE typnamespace = 'public'::regnamespace
                      AND typtype IN ('e', 'd', 'c') AND typrelid = 0""",
        "sequences": "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'",
    }
    return {name: sorted(query(dsn, q), key=repr) for name, q in queries.items()}
