"""Flyway baseline migrations (``B<N>__desc.sql``, SPEC 2a), as Flyway uses them: pure.

A fresh database (no history) starts at the newest B file at or below the target: that file
runs as version N (its history row carries the B file's description and checksum), then the
V files above N. The versions below N get no history row: the baseline covers them. Once a
history exists, B files are ignored, except the one a history row was applied from (its
checksum is the B file's, which the runner tells apart: ``baselined``): that version is the B
migration (no down script, so a rollback below it is refused as irreversible), and every
version below it is covered (never pending, never out of order).
"""

from __future__ import annotations

from collections.abc import Mapping

from patcher.core.models import Catalog, Migration


def available_and_pending(
    catalog: Catalog,
    applied: Mapping[int, object],
    baselined: frozenset[int],
    target: int | None,
) -> tuple[dict[int, Migration], tuple[Migration, ...]]:
    """The migration each version is, and the pending ones, with the baselines applied."""
    available = catalog.by_version()
    if not applied:
        start = _newest_at_or_below(catalog, target)
        if start is None:
            return available, tuple(catalog.migrations)
        available[start.version] = start
        later = tuple(m for m in catalog.migrations if m.version > start.version)
        return available, (start, *later)
    by_version = {b.version: b for b in catalog.baselines}
    for version in baselined:
        available[version] = by_version[version]
    covered = max(baselined, default=0)
    pending = tuple(
        m for m in catalog.migrations if m.version not in applied and m.version > covered
    )
    return available, pending


def _newest_at_or_below(catalog: Catalog, target: int | None) -> Migration | None:
    fitting = [b for b in catalog.baselines if target is None or b.version <= target]
    return fitting[-1] if fitting else None
