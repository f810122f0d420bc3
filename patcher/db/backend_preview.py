"""The preview side of ``PostgresBackend`` (the ``PreviewBackend`` port): table sizes, catalog
facts, ``verify`` and the data-at-risk counts. Each method loads its module only when a dry run
asks for it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg

from patcher.core.errors import StatementFailed
from patcher.core.models import VerifyReport

if TYPE_CHECKING:
    from patcher.core.catalog_port import Catalog
    from patcher.core.data_loss import Created, Loss, Probe
    from patcher.core.models import StopCheck


class PreviewQueries:
    """Mixed into ``PostgresBackend``, whose session, history names and restore SQL it uses."""

    conn: psycopg.Connection[Any]
    schema: str
    table: str
    _restore: str

    # -- introspection for previews -----------------------------------------------------------

    def table_sizes(self) -> dict[str, int]:
        from patcher.db import introspection

        return introspection.table_sizes(self.conn)

    def catalog_facts(self) -> Catalog:
        from patcher.db.catalog_facts import CatalogFacts

        return CatalogFacts(self.conn)

    def verify(
        self,
        scripts: Sequence[Sequence[str]],
        lock_timeout_ms: int,
        stop: StopCheck | None = None,
    ) -> list[VerifyReport]:
        from patcher.db import introspection

        return introspection.verify(self.conn, scripts, lock_timeout_ms, stop, self._restore)

    def estimate_at_risk(
        self,
        probes: Sequence[Probe],
        version: int,
        count_ms: int,
        budget_ms: int,
        created: Created | None = None,
    ) -> list[Loss]:
        from patcher.db import data_counts  # rollback previews only

        since = data_counts.Since((self.schema, self.table), version)
        budget = data_counts.Budget(count_ms, budget_ms)
        return data_counts.estimate(self.conn, probes, since, budget, created)

    def measure_at_risk(
        self,
        scripts: Sequence[Sequence[str]],
        versions: Sequence[int],
        casts: Sequence[Sequence[Probe]],
        lock_timeout_ms: int,
        stop: StopCheck | None = None,
    ) -> tuple[list[list[Loss]], StatementFailed | None]:
        from patcher.db import data_counts, data_measure  # rollback previews only

        history = (self.schema, self.table)
        return data_measure.measure(
            self.conn,
            scripts,
            [data_counts.Since(history, v) for v in versions],
            casts,
            lock_timeout_ms=lock_timeout_ms,
            skip=frozenset({f"{self.schema}.{self.table}", f"{self.schema}.{self.table}_log"}),
            stop=stop,
        )
