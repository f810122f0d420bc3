"""File names to migrations: the one parser and duplicate check every source shares.

A migration is ``<version>_<description>.up.sql`` plus an optional ``.down.sql`` with the same
version and description. ``version`` is 1 to 18 decimal digits compared as an integer; version
0 is refused in every layout (SPEC 2). Objects a ``LayoutSource`` marked with another tool's
layout are named the way that tool names them (``patcher/sources/layouts/names.py``): a
one-file layout's file gives both the up and the down script (each a section of it), and a
Flyway ``R__`` script a repeatable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from patcher.core.errors import InvalidSource
from patcher.core.models import Catalog, Direction, Migration, Repeatable, SourceObject
from patcher.core.record import record
from patcher.sources.layouts import names

MiB = 1024 * 1024
DEFAULT_MAX_SCRIPT_BYTES = 100 * MiB  # PATCHER_MAX_SCRIPT_MB's default
_NAME = re.compile(
    r"^(?P<version>[0-9]{1,18})_(?P<description>[^/]+?)\.(?P<direction>up|down)\.sql$"
)


@record
class ParsedName:
    version: int
    description: str
    direction: Direction


def parse_name(name: str) -> ParsedName:
    """Parse a migration file name or raise InvalidSource naming the expected form."""
    match = _NAME.match(name)
    if match is None:
        raise InvalidSource(
            f"migration file name {name!r} does not parse: expected "
            "'<version>_<description>.up.sql' or '.down.sql', version 1 to 18 digits, "
            "e.g. '0007_add_votes.up.sql'; rename or remove the file",
            file=name,
        )
    direction: Direction = "up" if match["direction"] == "up" else "down"
    return ParsedName(int(match["version"]), match["description"], direction)


def refuse_oversized(objects: Iterable[SourceObject], max_bytes: int | None) -> None:
    """Refuse, from the listed sizes and before any read, every ``*.sql`` over ``max_bytes``.

    Both sources call this on their listing, so a local directory and S3 cannot disagree."""
    if max_bytes is None:
        return
    big = [o for o in objects if o.name.endswith(".sql") and (o.size or 0) > max_bytes]
    if not big:
        return
    problems = [
        f"{o.name!r} is {o.size:,} bytes ({(o.size or 0) / MiB:.1f} MB), more than "
        f"PATCHER_MAX_SCRIPT_MB allows ({max_bytes / MiB:g} MB = {max_bytes:,} bytes)"
        for o in big
    ]
    raise InvalidSource(
        "the migration source is invalid, nothing was run: "
        + "; ".join(problems)
        + ". Split the script into several versions, or raise PATCHER_MAX_SCRIPT_MB (the "
        "function then needs memory for about 3x the largest script)",
        file=big[0].name,
        size=big[0].size,
        problems=problems,
    )


def build_catalog(objects: Iterable[SourceObject]) -> Catalog:
    """Group listed objects into migrations, refusing every problem at once.

    Objects not ending in ``.sql`` (README.md, folders) are ignored with a warning.
    """
    problems: list[str] = []
    bad_files: list[str] = []
    warnings: list[str] = []
    repeatables: list[Repeatable] = []
    baselines: dict[int, Migration] = {}
    files: dict[tuple[int, Direction], tuple[ParsedName, SourceObject]] = {}
    for obj in sorted(objects, key=lambda o: o.name):
        if not obj.name.endswith(".sql"):
            warnings.append(f"ignored {obj.key!r}: not a .sql migration file")
            continue
        try:
            scripts = _scripts_of(obj)
        except InvalidSource as exc:
            problems.append(exc.message)
            bad_files.append(obj.name)
            continue
        if isinstance(scripts, Repeatable):
            repeatables.append(scripts)
            continue
        if isinstance(scripts, Migration):  # a Flyway B file
            problem = _baseline_problem(scripts, baselines)
            if problem:
                problems.append(problem)
                bad_files.append(obj.name)
            else:
                baselines[scripts.version] = scripts
            continue
        if scripts and scripts[0][0].version == 0:
            problems.append(version_zero(obj.name))
            bad_files.append(obj.name)
            continue
        for parsed, script in scripts:
            slot = (parsed.version, parsed.direction)
            if slot in files:
                first = files[slot][1].name
                problems.append(
                    f"version {parsed.version} has two {parsed.direction} scripts: {first!r} "
                    f"and {obj.name!r}; versions compare as integers, so keep exactly one"
                )
                bad_files.append(obj.name)
                break
            files[slot] = (parsed, script)

    migrations: list[Migration] = []
    for (version, direction), (parsed, obj) in sorted(files.items()):
        if direction == "up":
            down = files.get((version, "down"))
            if down is not None and down[0].description != parsed.description:
                problems.append(
                    f"version {version}: up {obj.name!r} and down {down[1].name!r} carry "
                    "different descriptions; rename one so they match"
                )
                continue
            migrations.append(
                Migration(version, parsed.description, obj, down[1] if down else None)
            )
        elif (version, "up") not in files:
            up_name = (
                f"'{obj.name[: -len('.down.sql')]}.up.sql'"
                if obj.form is None
                else f"'V{version}__{parsed.description}.sql'"
            )
            problems.append(
                f"{obj.name!r} has no matching up script; add {up_name} or remove the down script"
            )
            bad_files.append(obj.name)
    if problems:
        raise InvalidSource(
            "the migration source is invalid, nothing was run: " + "; ".join(problems),
            problems=problems,
            file=bad_files[0] if bad_files else None,
        )
    repeatables.sort(key=lambda r: r.description)
    baseline_list = tuple(baselines[v] for v in sorted(baselines))
    return Catalog(tuple(migrations), tuple(warnings), tuple(repeatables), baseline_list)


def _baseline_problem(baseline: Migration, seen: dict[int, Migration]) -> str | None:
    if baseline.version == 0:
        return version_zero(baseline.up.name)
    if baseline.version in seen:
        return (
            f"version {baseline.version} has two baseline scripts: "
            f"{seen[baseline.version].up.name!r} and {baseline.up.name!r}; keep exactly one"
        )
    return None


def version_zero(name: str) -> str:
    """Why a version 0 file is refused (SPEC 2: ``target: 0`` means "before everything", so
    a version 0 could never be rolled back), and what to do, also when it was applied."""
    return (
        f"{name!r} has version 0, and versions start at 1 (target 0 means 'before every "
        "version', so version 0 could never be rolled back): rename it to a free version of 1 "
        "or more; if a database already applied it, move its history row to the new version "
        "too (UPDATE <schema>.<table> SET version = NEW WHERE version = 0)"
    )


def _scripts_of(
    obj: SourceObject,
) -> list[tuple[ParsedName, SourceObject]] | Repeatable | Migration:
    """The scripts one file gives, by its layout's naming: one, two (a one-file layout's up
    and down sections), a Flyway repeatable or a Flyway baseline (a migration with no down)."""
    if obj.form is None:
        return [(parse_name(obj.name), obj)]
    named = names.parse(obj.name, obj.form.layout)
    if named.version is None:
        return Repeatable(named.description, obj)
    if named.role == "baseline":
        return Migration(named.version, named.description, obj, None)
    if named.role == "both":
        sides: tuple[Direction, Direction] = ("up", "down")
        return [
            (
                ParsedName(named.version, named.description, side),
                replace(obj, form=replace(obj.form, section=side)),
            )
            for side in sides
        ]
    direction: Direction = "up" if named.role == "up" else "down"
    return [(ParsedName(named.version, named.description, direction), obj)]
