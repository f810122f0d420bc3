"""An in-memory ``MigrationSource``: file names to bytes, with optional S3-like fingerprints.

It keeps the same contract as ``LocalSource`` and ``S3Source`` (``patcher.sources.base``; the
source contract suite runs it beside them): it lists every object directly inside (not only
``.sql``; a folder as ``name/`` with no size), reads the bytes back, yields ``read_many`` in
the order given, and raises ``SourceUnavailable`` for an object gone after listing or a
source marked unavailable. ``reads`` records every name read, so tests can check what the
runner fetched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from patcher.core.errors import SourceUnavailable
from patcher.core.models import SourceObject


class MemorySource:
    """Migration files held in a dict; ``fingerprints=True`` gives each an ETag-like identity."""

    def __init__(self, files: dict[str, str | bytes] | None = None, *, fingerprints: bool = False):
        self.files: dict[str, bytes] = {}
        self.fingerprints = fingerprints
        self.unavailable = False
        self.reads: list[str] = []
        for name, data in (files or {}).items():
            self.write(name, data)

    # -- filling it ------------------------------------------------------------------------------

    def write(self, name: str, data: str | bytes) -> None:
        self.files[name] = data.encode() if isinstance(data, str) else data

    def pair(self, version: int, description: str, up: str, down: str | None = None) -> None:
        """``<version>_<description>.up.sql`` (and ``.down.sql``), the version zero-padded."""
        self.write(f"{version:04d}_{description}.up.sql", up)
        if down is not None:
            self.write(f"{version:04d}_{description}.down.sql", down)

    def delete(self, name: str) -> None:
        del self.files[name]

    # -- MigrationSource ---------------------------------------------------------------------------

    def describe(self) -> str:
        return "memory://migrations"

    def list(self) -> list[SourceObject]:
        if self.unavailable:
            raise SourceUnavailable("cannot list memory://migrations: unavailable (fake)")
        files = [
            SourceObject(name, name, self._fingerprint(data), len(data))
            for name, data in sorted(self.files.items())
            if "/" not in name
        ]  # a name with a "/" is inside a folder: only the folder is listed, as S3 and disk do
        folders = sorted({name.split("/", 1)[0] + "/" for name in self.files if "/" in name})
        return sorted(files + [SourceObject(f, f) for f in folders], key=lambda o: o.name)

    def read(self, obj: SourceObject) -> bytes:
        if self.unavailable or obj.key not in self.files:
            raise SourceUnavailable(f"cannot read memory://migrations/{obj.key}: not found")
        self.reads.append(obj.key)
        return self.files[obj.key]

    def read_many(self, objs: Iterable[SourceObject]) -> Iterator[tuple[SourceObject, bytes]]:
        for obj in objs:
            yield obj, self.read(obj)

    def _fingerprint(self, data: bytes) -> str | None:
        return hashlib.md5(data).hexdigest() if self.fingerprints else None
