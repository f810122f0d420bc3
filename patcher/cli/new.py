"""``patcher new``: write the next numbered up/down pair."""

from __future__ import annotations

import re
from pathlib import Path

from patcher.app.config import load_source_dir
from patcher.core.errors import InvalidRequest
from patcher.sources.catalog import build_catalog
from patcher.sources.local import LocalSource


def new_migration(description: str, directory: str | None, *, down: bool = True) -> list[Path]:
    """Create ``<next>_<description>.up.sql`` (and ``.down.sql``); return the paths written."""
    slug = re.sub(r"[^a-z0-9]+", "_", description.lower()).strip("_")
    if not slug:
        raise InvalidRequest(f"description {description!r} has no letters or digits")
    folder = Path(directory or load_source_dir())
    folder.mkdir(parents=True, exist_ok=True)
    catalog = build_catalog(LocalSource(folder).list())
    latest = catalog.migrations[-1] if catalog.migrations else None
    width = len(latest.up.name.split("_", 1)[0]) if latest else 4
    version = str((latest.version if latest else 0) + 1).zfill(width)
    paths = [folder / f"{version}_{slug}.up.sql"]
    if down:
        paths.append(folder / f"{version}_{slug}.down.sql")
    for path in paths:
        direction = "up" if path.name.endswith(".up.sql") else "down"
        path.write_text(
            f"-- {direction}: {description}\n"
            "-- Runs in one transaction with its history row. For CREATE INDEX CONCURRENTLY\n"
            "-- and friends, make the first line: -- patcher:no-transaction\n\n"
        )
    return paths
