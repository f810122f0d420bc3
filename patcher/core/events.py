"""Names of the events a run sends its sink that the adapters treat apart."""

from __future__ import annotations

PROGRESS_EVENTS = frozenset({
    "migration_started", "batch_started", "statement_started", "lock_waiting",
    "backfill_range", "backfill_waiting",
})  # fmt: skip
"""Events for someone watching the run live (the CLI's progress lines), not for logs:
``migration_started`` (version, description, direction, file), ``batch_started`` (several
migrations sent in one round trip: count, direction, first and last version, and each one's
[version, description]),
``statement_started`` (a no-transaction script's statement: index, count, line, text),
``lock_waiting`` (waited_ms, wait_limit_ms, holder; when the wait starts, then about once a
second), ``backfill_range`` (a backfill's range committed: version, rows_done, rows_estimated,
ranges_done, rows_per_s, range_ms), ``backfill_waiting`` (the replicas' lag_ms above
max_lag_ms). ``backfill`` (rows done by one invocation's part of a backfill), ``migration`` (one per
migration, at its end), ``lock_acquired`` and ``lock_not_needed`` are for logs as well."""
