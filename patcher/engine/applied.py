"""The current checksums of the applied versions' files, read only where they cannot be
proven unchanged, and which versions were applied from a Flyway B file (``baselines.py``)."""

from __future__ import annotations

from collections.abc import Callable

from patcher.core.checksum import checksum
from patcher.core.models import AppliedRow, Catalog, Migration, SourceObject
from patcher.sources.base import MigrationSource


def applied_checksums(
    source: MigrationSource,
    catalog: Catalog,
    history: list[AppliedRow],
    seen: Callable[[SourceObject, bytes], object] | None = None,
    known: dict[str, tuple[SourceObject, str]] | None = None,
) -> tuple[dict[int, str], frozenset[int]]:
    """Each applied version's current up checksum, and the versions whose row has the
    checksum of the version's B file (applied from it; a B file alone is one too). ``seen``
    is shown each file read (``status`` takes its mode from it rather than read it again).
    ``known``: the checksums this run already computed (of the same listed objects, before it
    waited for the lock), filled with the new ones: a file is read once per run."""
    available, base = catalog.by_version(), {b.version: b for b in catalog.baselines}
    sums: dict[int, str] = {}
    baselined: set[int] = set()
    to_read: list[tuple[int, bool, SourceObject]] = []
    for row in history:
        sides: list[tuple[Migration | None, bool]] = [
            (base.get(row.version), True),
            (available.get(row.version), False),
        ]
        for migration, of_base in sides:
            if migration is None or row.version in baselined:
                continue
            if migration.up.fingerprint is not None and migration.up.fingerprint == row.fingerprint:
                sums[row.version] = row.checksum
                if of_base:
                    baselined.add(row.version)
            else:
                to_read.append((row.version, of_base, migration.up))
    if not to_read:
        return sums, frozenset(baselined)
    rows = {row.version: row for row in history}
    memo = known if known is not None and seen is None else {}
    found = {o.key: memo[o.key][1] for *_, o in to_read if memo.get(o.key, (None,))[0] is o}
    unread = [obj for *_, obj in to_read if obj.key not in found]
    for obj, data in source.read_many(unread) if unread else ():
        found[obj.key] = checksum(data)  # core.checksum: no SQL lexer loaded
        memo[obj.key] = (obj, found[obj.key])  # the same listed object: ``is``, not ==
        if seen is not None:
            seen(obj, data)
    for version, of_base, obj in to_read:
        if version in baselined:
            continue
        if of_base and (found[obj.key] == rows[version].checksum or version not in available):
            baselined.add(version)  # applied from the B file (or the B file is all there is)
            sums[version] = found[obj.key]
        elif not of_base:
            sums[version] = found[obj.key]
    return sums, frozenset(baselined)
