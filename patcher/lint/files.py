"""What ``patcher lint`` reads: the ``*.sql`` files its paths name, in change-set order.

A path is a file, a directory (its ``*.sql`` files, not recursive: a migrations directory) or
an ``s3://bucket/prefix/`` (read through the same sources as the runner). The change set is
every up script (``N_desc.up.sql``) of all paths, in version order, that ``patcher.lint.base``
keeps (the files not deployed at the base commit); objects an earlier one creates are new for
the later ones. A down script, or a file whose name is no migration name,
is linted on its own: what it drops was created by an earlier release, so it exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from patcher.core.errors import InvalidSource, PatcherError
from patcher.core.models import SourceObject
from patcher.sources import MigrationSource, open_source
from patcher.sources.catalog import parse_name


class LintUsageError(Exception):
    """A path that names nothing lint can read (exit status 2)."""


@dataclass(frozen=True)
class LintFile:
    shown: str  # the name in findings: the path as given (relative), or the s3:// URL
    source: MigrationSource
    obj: SourceObject
    order: tuple[int, int, str]  # (0 up / 1 on its own, version, name)

    @property
    def in_change_set(self) -> bool:
        return self.order[0] == 0

    def read(self) -> bytes:
        return self.source.read(self.obj)


def collect(paths: list[str]) -> list[LintFile]:
    """Every file to lint, up scripts first in version order, then the others by name."""
    files: list[LintFile] = []
    for path in paths:
        files.extend(_expand(path))
    seen: set[str] = set()
    unique = [f for f in files if not (f.shown in seen or seen.add(f.shown))]  # type: ignore[func-returns-value]
    return sorted(unique, key=lambda f: f.order)


def _expand(path: str) -> Iterator[LintFile]:
    if path.startswith("s3://"):
        source = open_source(path)
        base = path if path.endswith("/") else path + "/"
        for obj in source.list():
            if obj.name.endswith(".sql"):
                yield LintFile(base + obj.name, source, obj, _order(obj.name))
        return
    local = Path(path.removeprefix("file://"))
    if local.is_dir():
        source = open_source(str(local))
        for obj in source.list():
            if obj.name.endswith(".sql"):
                yield LintFile(_shown(local / obj.name), source, obj, _order(obj.name))
    elif local.is_file():
        source = open_source(str(local.parent))
        obj = SourceObject(local.name, str(local), size=local.stat().st_size)
        yield LintFile(_shown(local), source, obj, _order(local.name))
    else:
        raise LintUsageError(
            f"{path}: no such file or directory (give .sql files, "
            "migration directories or s3://bucket/prefix/)"
        )


def _shown(path: Path) -> str:
    """A path as findings show it: relative to the current directory when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _order(name: str) -> tuple[int, int, str]:
    try:
        parsed = parse_name(name)
    except InvalidSource:
        return (1, 0, name)
    return (0, parsed.version, name) if parsed.direction == "up" else (1, parsed.version, name)


__all__ = ["LintFile", "LintUsageError", "PatcherError", "collect"]
