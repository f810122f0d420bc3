"""One engine run on the fakes: a FakeDatabase, a MemorySource and fast RunOptions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from patcher.app.result import build_result
from patcher.core.models import Request
from patcher.engine.context import RunOptions
from patcher.engine.outcome import Outcome
from patcher.engine.runner import run
from tests.fakes.backend import FakeBackend, FakeDatabase
from tests.fakes.source import MemorySource

FAST = RunOptions(
    lock_wait_seconds=0.05,
    lock_poll_seconds=(0.001, 0.002),
    lock_retries=2,
    lock_retry_backoff_seconds=0.001,
    time_margin_seconds=30.0,
)
NO_TX = "-- patcher:no-transaction\n"


class Env:
    """A database, a source, and the events of the runs made on them."""

    def __init__(self, *, fingerprints: bool = False) -> None:
        self.db = FakeDatabase()
        self.source = MemorySource(fingerprints=fingerprints)
        self.events: list[tuple[str, dict[str, Any]]] = []

    def tables(self, *versions: int) -> None:
        """Versions that each create table t<v> (and drop it going down)."""
        for v in versions:
            self.source.pair(v, f"t{v}", f"CREATE TABLE t{v} (id int);\n", f"DROP TABLE t{v};\n")

    def run(
        self,
        action: str = "migrate",
        *,
        options: RunOptions = FAST,
        time_left_ms: Callable[[], int] | None = None,
        session: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Outcome:
        return run(
            Request(action=action, **fields),  # type: ignore[arg-type]
            source=self.source,
            connect=self.db.connector(request_id="req-1", invoked_by="unit", **(session or {})),
            options=options,
            time_left_ms=time_left_ms,
            events=lambda name, data: self.events.append((name, data)),
        )

    def result(self, action: str = "migrate", **kwargs: Any) -> dict[str, Any]:
        outcome = self.run(action, **kwargs)
        return build_result(
            action=action,
            dry_run=bool(kwargs.get("dry_run")),
            outcome=outcome,
            request_id="req-1",
            duration_ms=3,
        )

    def other(self, application_name: str = "other-run") -> FakeBackend:
        """Another session on the same database (another run, a human in psql)."""
        return self.db.connect(application_name=application_name)

    def versions(self) -> list[int]:
        return [r["version"] for r in self.db.history_rows()]

    def dirty(self) -> list[tuple[int, str | None]]:
        return [(r["version"], r["dirty_direction"]) for r in self.db.history_rows() if r["dirty"]]

    def log(self) -> list[tuple[int, str, str]]:
        return [(r["version"], r["direction"], r["outcome"]) for r in self.db.log_rows()]

    def user_tables(self) -> set[str]:
        return self.db.table_names() - {"schema_migrations", "schema_migrations_log"}

    def called(self, method: str) -> int:
        return self.db.methods_called().count(method)


def states(outcome: Outcome) -> list[tuple[int, str, str]]:
    return [(e.version, e.direction, e.state) for e in outcome.entries]


def pending(outcome: Outcome) -> list[int]:
    return [m.version for m in outcome.pending]


def error_type(outcome: Outcome) -> str | None:
    return outcome.error.type if outcome.error else None
