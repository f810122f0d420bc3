"""``LayoutSource``: any migration source, its listing marked with the layout it is written in.

It lists and reads through the source it wraps (local directory or S3: both keep the contract)
and adds only what a layout needs: each ``*.sql`` object carries a ``ScriptForm`` naming its
layout, Flyway's ``<script>.sql.conf`` files are read for ``executeInTransaction`` (and left
out of the listing), and ``auto`` picks the one layout every name fits, refusing a mixture.
Names alone cannot tell dbmate from goose: ``auto`` then reads the first such file's markers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import replace

from patcher.core.errors import InvalidSource
from patcher.core.models import ScriptForm, SourceObject
from patcher.sources.base import MigrationSource
from patcher.sources.layouts import LAYOUTS
from patcher.sources.layouts.names import kind_of

_CONF = ".sql.conf"
_KIND_NAMES = {
    "golang-migrate": "golang-migrate/sqlx ('N_desc.up.sql')",
    "flyway": "flyway ('V<N>__desc.sql')",
    "one-file": "dbmate/goose ('N_desc.sql')",
}
_DBMATE_MARK = re.compile(r"^--\s*migrate:(?:up|down)\b", re.MULTILINE)
_GOOSE_MARK = re.compile(r"^--\s*\+goose\s", re.MULTILINE)


class LayoutSource:
    """The wrapped source's objects, each ``*.sql`` one marked with its layout's form."""

    def __init__(self, inner: MigrationSource, layout: str = "auto") -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}")
        self.inner = inner
        self.layout = layout
        self.resolved: str | None = None  # the layout the last listing was read as

    def describe(self) -> str:
        return self.inner.describe()

    def list(self) -> list[SourceObject]:
        objects = self.inner.list()
        layout = self.layout if self.layout != "auto" else detect(self.inner, objects)
        self.resolved = "golang-migrate" if layout == "sqlx" else layout
        if self.resolved == "golang-migrate":
            return objects
        if self.resolved == "flyway":
            return _flyway(self.inner, objects)
        form = ScriptForm(self.resolved)
        return [replace(o, form=form) if o.name.endswith(".sql") else o for o in objects]

    def read(self, obj: SourceObject) -> bytes:
        return self.inner.read(obj)

    def read_many(self, objs: Iterable[SourceObject]) -> Iterator[tuple[SourceObject, bytes]]:
        return self.inner.read_many(objs)


def detect(inner: MigrationSource, objects: list[SourceObject]) -> str:
    """The one layout every ``*.sql`` name fits (golang-migrate for none); refuses a mixture."""
    first: dict[str, str] = {}
    for obj in sorted(objects, key=lambda o: o.name):
        kind = kind_of(obj.name) if obj.name.endswith(".sql") else None
        if kind is not None:
            first.setdefault(kind, obj.name)
    if len(first) > 1:
        shown = "; ".join(f"{first[k]!r} is {_KIND_NAMES[k]}" for k in first)
        raise InvalidSource(
            "the migration source mixes layouts, nothing was run: "
            f"{shown}. Keep one tool's layout per source (rename or move the others), or "
            "set PATCHER_LAYOUT to golang-migrate, flyway, dbmate or goose",
            file=next(iter(first.values())),
            files=list(first.values()),
        )
    if "one-file" in first:
        return _sniff(inner, objects, first["one-file"])
    return next(iter(first), "golang-migrate")


def _sniff(inner: MigrationSource, objects: list[SourceObject], name: str) -> str:
    """dbmate or goose, from the markers of the first one-file script."""
    obj = next(o for o in objects if o.name == name)
    text = inner.read(obj).decode("utf-8", errors="replace")
    dbmate, goose = _DBMATE_MARK.search(text), _GOOSE_MARK.search(text)
    if dbmate and not goose:
        return "dbmate"
    if goose and not dbmate:
        return "goose"
    raise InvalidSource(
        f"{name}: a '<version>_<description>.sql' name fits dbmate and goose, and the file "
        f"has {'both' if dbmate else 'neither'} '-- migrate:up' and '-- +goose Up' markers"
        "; set PATCHER_LAYOUT to dbmate or goose, or fix the markers",
        file=name,
    )


def _flyway(inner: MigrationSource, objects: list[SourceObject]) -> list[SourceObject]:
    names = {o.name for o in objects}
    confs = [o for o in objects if o.name.endswith(_CONF) and o.name[:-5] in names]
    no_tx = {
        obj.name[:-5]: flyway_no_transaction(obj.name, data) for obj, data in inner.read_many(confs)
    }
    conf_keys = {o.key for o in confs}
    return [
        replace(o, form=ScriptForm("flyway", no_transaction=no_tx.get(o.name, False)))
        if o.name.endswith(".sql")
        else o
        for o in objects
        if o.key not in conf_keys
    ]


def flyway_no_transaction(name: str, data: bytes) -> bool:
    """Whether a Flyway script config says ``executeInTransaction=false``; refuses keys and
    values StackFlowPatcher would not honour, naming the line."""
    no_transaction = False
    for number, raw in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, _, value = (part.strip() for part in line.partition("="))
        value = value.lower()
        if key == "executeInTransaction" and value in ("true", "false"):
            no_transaction = value == "false"
        elif key == "encoding" and value.replace("-", "") == "utf8":
            continue
        else:
            raise InvalidSource(
                f"{name} line {number}: {line[:80]!r} is not supported; a Flyway script "
                "config may set executeInTransaction=true|false (and encoding=UTF-8)",
                file=name,
                line=number,
            )
    return no_transaction
