"""One file name parser per layout, and which layout a name fits (for ``auto``).

golang-migrate / sqlx: ``<N>_<desc>.up.sql`` / ``.down.sql``. Flyway: ``V<N>__<desc>.sql``,
``U<N>__<desc>.sql`` (undo), ``B<N>__<desc>.sql`` (baseline), ``R__<desc>.sql`` (repeatable);
dotted versions (``V1.2``,
``V1_2``) are refused since versions compare as integers here. dbmate and goose: one
``<N>_<desc>.sql`` file per version. ``N`` is 1 to 18 decimal digits everywhere.
"""

from __future__ import annotations

import re
from typing import Literal

from patcher.core.errors import InvalidSource
from patcher.core.record import record

Role = Literal["up", "down", "repeatable", "both", "baseline"]  # "both": a one-file layout's file

_PAIR = re.compile(r"^(?P<v>[0-9]{1,18})_(?P<d>[^/]+?)\.(?P<r>up|down)\.sql$")
_FLYWAY = re.compile(r"^(?P<k>[VUB])(?P<v>[0-9]{1,18})__(?P<d>[^/]+)\.sql$")
_FLYWAY_ROLES: dict[str, Role] = {"V": "up", "U": "down", "B": "baseline"}
_FLYWAY_REPEATABLE = re.compile(r"^R__(?P<d>[^/]+)\.sql$")
_FLYWAY_DOTTED = re.compile(r"^(?P<k>[VUB])(?P<v>[0-9]+(?:[._][0-9]+)+)__(?P<d>[^/]+)\.sql$")
_FLYWAY_LIKE = re.compile(r"^(?:[VUBR][0-9._]*__).*\.sql$")
_ONE_FILE = re.compile(r"^(?P<v>[0-9]{1,18})_(?P<d>[^/]+)\.sql$")
_PAIR_LIKE = re.compile(r"^[0-9]+_.+\.(?:up|down)\.sql$")
_ONE_FILE_LIKE = re.compile(r"^[0-9]+_.+\.sql$")

EXPECTED = {
    "golang-migrate": "'<version>_<description>.up.sql' or '.down.sql', e.g. "
    "'0007_add_votes.up.sql'",
    "flyway": "'V<version>__<description>.sql', 'U<version>__<description>.sql' (undo) or "
    "'B<version>__<description>.sql' (baseline) or 'R__<description>.sql' (repeatable), e.g. "
    "'V7__add_votes.sql'",
    "dbmate": "'<version>_<description>.sql' with '-- migrate:up' and '-- migrate:down' "
    "sections, e.g. '20240101120000_add_votes.sql'",
    "goose": "'<version>_<description>.sql' with '-- +goose Up' and '-- +goose Down' "
    "sections, e.g. '00007_add_votes.sql'",
}
EXPECTED["sqlx"] = EXPECTED["golang-migrate"]


@record
class Named:
    """What a file name says: its version (None for a repeatable), description and role."""

    version: int | None
    description: str
    role: Role


def kind_of(name: str) -> str | None:
    """The layout family a ``*.sql`` name fits ("golang-migrate", "flyway", "one-file"), or
    None when it fits none. Used by ``auto``: names alone cannot tell dbmate from goose."""
    if _PAIR_LIKE.match(name):
        return "golang-migrate"
    if _FLYWAY_LIKE.match(name):
        return "flyway"
    if _ONE_FILE_LIKE.match(name):
        return "one-file"
    return None


def parse(name: str, layout: str) -> Named:
    """Parse ``name`` as ``layout`` lays files out, or raise InvalidSource naming the form."""
    if layout == "flyway":
        return _parse_flyway(name)
    pattern = _ONE_FILE if layout in ("dbmate", "goose") else _PAIR
    match = pattern.match(name)
    if match is None:
        raise _malformed(name, layout)
    role: Role = "both" if pattern is _ONE_FILE else ("up" if match["r"] == "up" else "down")
    return Named(int(match["v"]), match["d"], role)


def _parse_flyway(name: str) -> Named:
    repeatable = _FLYWAY_REPEATABLE.match(name)
    if repeatable is not None:
        return Named(None, repeatable["d"], "repeatable")
    match = _FLYWAY.match(name)
    if match is not None:
        return Named(int(match["v"]), match["d"], _FLYWAY_ROLES[match["k"]])
    dotted = _FLYWAY_DOTTED.match(name)
    if dotted is not None:
        raise dotted_version(name, dotted["k"], dotted["v"], dotted["d"])
    raise _malformed(name, "flyway")


def dotted_version(name: str, prefix: str, version: str, description: str) -> InvalidSource:
    """The refusal of a Flyway dotted version, with the rename that keeps the order."""
    parts = [int(p) for p in re.split(r"[._]", version)]
    example = parts[0] * 1000 + (parts[1] if len(parts) > 1 else 0)
    return InvalidSource(
        f"{name}: Flyway version {version!r} is dotted, and StackFlowPatcher compares versions "
        "as whole integers. Rename every versioned file to an integer version that keeps "
        f"their order, e.g. '{prefix}{example}__{description}.sql' (major x 1000 + minor) for "
        "this one, and its undo script the same way",
        file=name,
    )


def _malformed(name: str, layout: str) -> InvalidSource:
    return InvalidSource(
        f"migration file name {name!r} does not parse as the {layout} layout: expected "
        f"{EXPECTED[layout]}, version 1 to 18 digits; rename or remove the file (or set "
        "PATCHER_LAYOUT to the layout the directory was written for)",
        file=name,
    )
