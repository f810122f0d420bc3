"""Schema drift, pure (SPEC section 13): a snapshot's objects, held against the live ones.

A snapshot is a list of ``[kind, object, parent, definition]`` (JSON), as the catalog query of
``patcher/db/snapshot_sql.py`` returns it: ``object`` is the schema-qualified name
(``public.users``, ``public.users.email`` for a column, ``public.users_email_idx`` for an
index, ``public.f(integer)`` for a function); ``parent`` the table a column, constraint,
index, trigger, policy or column privilege belongs to, so that ignoring a table ignores them.
Two snapshots are compared object by object; a changed object reports only the fields that
differ. Kinds the live reader could not read are ``unreadable``: their objects are listed
apart, never reported as removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

SNAPSHOT_FORMAT = 1  # the body layout this version writes and reads; a newer one is refused


@dataclass(frozen=True)
class SchemaObject:
    kind: str
    name: str
    parent: str | None
    definition: Mapping[str, Any]


@dataclass(frozen=True)
class Difference:
    """One object that is not as the snapshot has it."""

    kind: str
    object: str
    change: str  # "added" | "removed" | "changed"
    expected: Any
    actual: Any
    parent: str | None = None  # the table of a column, index...: not in the result

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "object": self.object,
            "change": self.change,
            "expected": self.expected,
            "actual": self.actual,
        }

    def describe(self) -> str:
        """One line for warnings and the audit log."""
        if self.change != "changed":
            return f"{self.kind} {self.object} {self.change}"
        fields = ", ".join(sorted(set(self.expected or {}) | set(self.actual or {})))
        return f"{self.kind} {self.object} changed ({fields})"


@dataclass(frozen=True)
class Comparison:
    differences: list[Difference]
    unreadable: list[str] = field(default_factory=list)  # "kind object" not compared


@dataclass(frozen=True)
class DriftReading:
    """What ``drift`` found: the comparison, and the snapshot it held the schema against."""

    comparison: Comparison
    version: int | None  # the newest applied version when the snapshot was taken
    taken_at: str
    tool_version: str
    snapshot_objects: int
    live_objects: int
    snapshot_bytes: int  # as stored (compressed)


Objects = dict[tuple[str, str], SchemaObject]


def parse_body(body: str) -> Objects:
    """A stored snapshot body as objects; ``ValueError`` when it is not one."""
    items = json.loads(body)
    if not isinstance(items, list):
        raise ValueError("the snapshot body is not a JSON list")
    return objects_of(items)


def objects_of(rows: Iterable[Sequence[Any]]) -> Objects:
    """Rows ``(kind, object, parent, definition)`` keyed by (kind, object); empty fields of a
    definition (JSON null) are dropped, as the stored body drops them."""
    out: Objects = {}
    for row in rows:
        if not isinstance(row, list | tuple) or len(row) != 4:
            raise ValueError(f"a snapshot entry is not [kind, object, parent, definition]: {row!r}")
        kind, name, parent, definition = row
        if not isinstance(kind, str) or not isinstance(name, str):
            raise ValueError(f"a snapshot entry has no kind or name: {row!r}")
        defn = {k: v for k, v in (definition or {}).items() if v is not None}
        out[(kind, name)] = SchemaObject(kind, name, parent, defn)
    return out


def ignore_patterns(value: str | None) -> tuple[str, ...]:
    """PATCHER_DRIFT_IGNORE: comma-separated fnmatch patterns over object names."""
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


def ignored(obj: SchemaObject, patterns: Sequence[str]) -> bool:
    """Whether a PATCHER_DRIFT_IGNORE pattern matches the object's name or its table's."""
    names = (obj.name,) if obj.parent is None else (obj.name, obj.parent)
    return any(fnmatchcase(n, p) for p in patterns for n in names)


def compare(
    expected: Objects,
    actual: Objects,
    *,
    ignore: Sequence[str] = (),
    unreadable_kinds: Iterable[str] = (),
) -> Comparison:
    """Every difference between the snapshot (``expected``) and the live schema (``actual``),
    sorted by object name; objects of unreadable kinds are listed apart, never compared."""
    blind = frozenset(unreadable_kinds)
    differences: list[Difference] = []
    unreadable: list[str] = []
    for key in sorted(set(expected) | set(actual), key=lambda k: (k[1], k[0])):
        want, have = expected.get(key), actual.get(key)
        obj = want or have
        if obj is None:  # pragma: no cover - the key came from one of the two
            continue
        if ignored(obj, ignore):
            continue
        if obj.kind in blind:
            if want is not None:
                unreadable.append(f"{obj.kind} {obj.name}")
            continue
        if have is None:
            defn = dict(obj.definition)
            differences.append(Difference(obj.kind, obj.name, "removed", defn, None, obj.parent))
        elif want is None:
            defn = dict(have.definition)
            differences.append(Difference(obj.kind, obj.name, "added", None, defn, obj.parent))
        elif want.definition != have.definition:
            fields = set(want.definition) | set(have.definition)
            changed = sorted(f for f in fields if want.definition.get(f) != have.definition.get(f))
            differences.append(
                Difference(
                    obj.kind,
                    obj.name,
                    "changed",
                    {f: want.definition.get(f) for f in changed},
                    {f: have.definition.get(f) for f in changed},
                    obj.parent,
                )
            )
    return Comparison(differences, unreadable)


def touched(differences: Iterable[Difference], names: Iterable[str]) -> list[Difference]:
    """The differences whose object, or its table, is one of ``names`` (``schema.name``)."""
    wanted = set(names)
    out = []
    for diff in differences:
        bare = diff.object.split("(")[0]  # a function by its name, whatever its arguments
        if {diff.object, bare, diff.parent} & wanted:
            out.append(diff)
    return out


def summary(differences: Sequence[Difference], limit: int = 20) -> str:
    """The differences on one line each (at most ``limit``, then how many more)."""
    lines = [d.describe() for d in differences[:limit]]
    if len(differences) > limit:
        lines.append(f"... and {len(differences) - limit} more")
    return "; ".join(lines)
