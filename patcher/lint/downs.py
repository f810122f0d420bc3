"""Which versions have a down script, for ``CONTRACT_WITHOUT_DOWN`` (SPEC 11): a contract
version whose down script is missing cannot follow an alias rollback with a database rollback.

Lint sees the directory's files: the listing of each up script's source (its directory, or its
``s3://`` prefix, listed once each), so a file given alone still finds its down script beside it,
and a down script given as a path counts too."""

from __future__ import annotations

from collections.abc import Iterable

from patcher.core.errors import InvalidSource
from patcher.lint.files import LintFile
from patcher.sources.catalog import parse_name


class DownScripts:
    """``has_down(file)``: whether the up script's version has a ``.down.sql`` where lint looks."""

    def __init__(self, files: Iterable[LintFile]) -> None:
        self._given = {_down_version(f.obj.name) for f in files} - {None}
        self._listed: dict[int, set[int | None]] = {}  # id(source) -> its down versions

    def has_down(self, lint_file: LintFile) -> bool:
        try:
            version = parse_name(lint_file.obj.name).version
        except InvalidSource:
            return True  # not a migration: nothing to say
        if version in self._given:
            return True
        key = id(lint_file.source)
        if key not in self._listed:
            self._listed[key] = {_down_version(o.name) for o in lint_file.source.list()}
        return version in self._listed[key]


def _down_version(name: str) -> int | None:
    try:
        parsed = parse_name(name)
    except InvalidSource:
        return None
    return parsed.version if parsed.direction == "down" else None


def without_down_message(version: int) -> str:
    return (
        f"version {version} is a contract version and has no down script "
        f"({version}_<description>.down.sql): once contract has run, an alias rollback to the "
        "previous release cannot be matched by a database rollback (patcher migrate --target "
        "below it), so the previous release meets a schema it breaks on. Write the down "
        "script (it restores what contract removed), or plan to roll the application forward"
    )
