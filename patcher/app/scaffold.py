"""What ``patcher new`` asks of a migrations folder: the version its next pair takes."""

from __future__ import annotations

from pathlib import Path

from patcher.sources.catalog import build_catalog
from patcher.sources.local import LocalSource


def next_version(folder: Path) -> str:
    """The version after the newest in ``folder``, zero-padded as wide as that file spells it
    (``0001`` in a folder with none)."""
    catalog = build_catalog(LocalSource(folder).list())
    latest = catalog.migrations[-1] if catalog.migrations else None
    width = len(latest.up.name.split("_", 1)[0]) if latest else 4
    return str((latest.version if latest else 0) + 1).zfill(width)
