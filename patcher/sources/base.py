"""The contract every migration source keeps (see tests/contract/ for the shared suite)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from patcher.core.models import SourceObject


class MigrationSource(Protocol):
    """A dumb lister and reader: all policy lives in the runner.

    ``describe()`` names the source for messages. ``list()`` returns every object under the
    source (not only ``.sql``: the catalog warns about the rest), or raises SourceUnavailable.
    ``read(obj)`` returns an object's bytes, or raises SourceUnavailable. ``read_many`` may
    fetch in parallel and yields ``(obj, bytes)`` in the order given.
    """

    def describe(self) -> str: ...

    def list(self) -> list[SourceObject]: ...

    def read(self, obj: SourceObject) -> bytes: ...

    def read_many(self, objs: Iterable[SourceObject]) -> Iterator[tuple[SourceObject, bytes]]: ...
