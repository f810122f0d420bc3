"""A directory of migration files on the local disk.

Only regular files and subdirectories (listed as ignorable) may sit in it. A symbolic link, a
FIFO, a socket or a device, and a name that is not valid UTF-8, make the source invalid: the
listing reads ``lstat`` only, so a FIFO is never opened and a link never followed. Reads open
with ``O_NOFOLLOW | O_NONBLOCK`` and check the opened file again, for a file swapped after the
listing. ``*.sql`` files over the size cap are refused from the listing, before any read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from patcher.core.errors import InvalidSource, SourceUnavailable
from patcher.core.models import SourceObject
from patcher.sources.catalog import DEFAULT_MAX_SCRIPT_BYTES, refuse_oversized

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_KINDS = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


class LocalSource:
    """Lists the files directly inside one directory; subdirectories are listed as ignorable."""

    def __init__(
        self, directory: str | Path, *, max_script_bytes: int | None = DEFAULT_MAX_SCRIPT_BYTES
    ) -> None:
        self.directory = Path(directory)
        self.max_script_bytes = max_script_bytes

    def describe(self) -> str:
        return str(self.directory)

    def list(self) -> list[SourceObject]:
        objects: list[SourceObject] = []
        problems: list[tuple[str, str]] = []  # (file as shown, what is wrong)
        try:
            with os.scandir(self.directory) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    shown = shown_name(entry.name)
                    if shown != entry.name:
                        problems.append((shown, f"the file name {shown} is not valid UTF-8"))
                        continue
                    mode = entry.stat(follow_symlinks=False).st_mode
                    if stat.S_ISDIR(mode):
                        objects.append(SourceObject(entry.name + "/", entry.path))
                    elif stat.S_ISREG(mode):
                        size = entry.stat(follow_symlinks=False).st_size
                        objects.append(SourceObject(entry.name, entry.path, size=size))
                    else:
                        problems.append((repr(entry.name), f"{entry.name!r} is {_kind(mode)}"))
        except OSError as exc:
            raise SourceUnavailable(
                f"cannot list migration directory {self.directory}: {exc.strerror} "
                f"({exc.filename}); check PATCHER_SOURCE / --source",
            ) from exc
        if problems:
            raise InvalidSource(
                f"the migration source {self.directory} is invalid, nothing was run: "
                + "; ".join(why for _, why in problems)
                + ". A migrations directory holds regular files with UTF-8 names only (no "
                "links, pipes or devices): rename, copy in or remove these",
                file=problems[0][0],
                problems=[why for _, why in problems],
            )
        refuse_oversized(objects, self.max_script_bytes)
        return objects

    def read(self, obj: SourceObject) -> bytes:
        try:
            mode = os.lstat(obj.key).st_mode
            if not stat.S_ISREG(mode):  # swapped after the listing: never open a FIFO
                raise _changed(obj, mode)
            fd = os.open(obj.key, _OPEN_FLAGS)
            with open(fd, "rb") as file:
                st = os.fstat(file.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise _changed(obj, st.st_mode)
                limit = self.max_script_bytes
                data = file.read() if limit is None else _read_bounded(file, st.st_size, limit)
        except OSError as exc:
            raise SourceUnavailable(f"cannot read {obj.key}: {exc.strerror}") from exc
        if self.max_script_bytes is not None and len(data) > self.max_script_bytes:
            grown = SourceObject(obj.name, obj.key, size=len(data))  # grew after the listing
            refuse_oversized([grown], self.max_script_bytes)
        return data

    def read_many(self, objs: Iterable[SourceObject]) -> Iterator[tuple[SourceObject, bytes]]:
        for obj in objs:
            yield obj, self.read(obj)


def _read_bounded(file: BinaryIO, size: int, limit: int) -> bytes:
    """At most ``limit + 1`` bytes. ``read(n)`` allocates n bytes before it reads (100 MB by
    default: ~20 us of every small script), so this asks for the size ``fstat`` gave and reads
    on only when the file grew since."""
    data = file.read(min(size, limit) + 1)
    if size < len(data) <= limit:
        data += file.read(limit + 1 - len(data))
    return data


def shown_name(name: str) -> str:
    """``name`` itself when it is valid UTF-8, else its raw bytes escaped (``b'caf\\xe9'``)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.scandir kept the undecodable bytes as surrogates
        return repr(os.fsencode(name))
    return name


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _changed(obj: SourceObject, mode: int) -> InvalidSource:
    return InvalidSource(
        f"{obj.name!r} became {_kind(mode)} after it was listed; nothing was run. A migrations "
        "directory holds regular files only: replace it with the file itself",
        file=obj.name,
    )
