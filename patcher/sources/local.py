"""A directory of migration files on the local disk."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from patcher.core.errors import SourceUnavailable
from patcher.core.models import SourceObject


class LocalSource:
    """Lists the files directly inside one directory; subdirectories are listed as ignorable."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def describe(self) -> str:
        return str(self.directory)

    def list(self) -> list[SourceObject]:
        objects = []
        try:
            for path in sorted(self.directory.iterdir()):
                is_dir = path.is_dir()
                size = None if is_dir else path.stat().st_size
                objects.append(SourceObject(path.name + "/" * is_dir, str(path), size=size))
        except OSError as exc:
            raise SourceUnavailable(
                f"cannot list migration directory {self.directory}: {exc.strerror} "
                f"({exc.filename}); check PATCHER_SOURCE / --source",
            ) from exc
        return objects

    def read(self, obj: SourceObject) -> bytes:
        try:
            return Path(obj.key).read_bytes()
        except OSError as exc:
            raise SourceUnavailable(f"cannot read {obj.key}: {exc.strerror}") from exc

    def read_many(self, objs: Iterable[SourceObject]) -> Iterator[tuple[SourceObject, bytes]]:
        for obj in objs:
            yield obj, self.read(obj)
