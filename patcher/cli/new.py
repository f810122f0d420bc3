"""``patcher new``: write the next numbered up/down pair."""

from __future__ import annotations

import re
from pathlib import Path

from patcher.app.environment import load_source_dir
from patcher.app.scaffold import next_version
from patcher.core.errors import InvalidRequest


def new_migration(description: str, directory: str | None, *, down: bool = True) -> list[Path]:
    """Create ``<next>_<description>.up.sql`` (and ``.down.sql``); return the paths written."""
    slug = re.sub(r"[^a-z0-9]+", "_", description.lower()).strip("_")
    if not slug:
        raise InvalidRequest(f"description {description!r} has no letters or digits")
    folder = Path(directory or load_source_dir())
    folder.mkdir(parents=True, exist_ok=True)
    version = next_version(folder)
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
