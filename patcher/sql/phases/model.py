"""The vocabulary of the expand / contract classification (``phases``, ``rules``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from patcher.core.catalog_port import Catalog

Phase = Literal["expand", "contract", "neutral"]


@dataclass(frozen=True)
class Verdict:
    """What one statement is for the previous release, and why."""

    phase: Phase
    kind: str  # the statement kind, as the README's table names it
    reason: str
    recipe: str | None = None  # the SPEC 12 recipe that does it without breaking anything
    catalog: bool = False  # offline answer that the catalog could change (lint says so)


@dataclass
class ChangeSet:
    """What the statements classified so far created (keys as in ``risks.objects``, plus
    ``column:schema.table.column``), and the catalog when a run has one."""

    catalog: Catalog | None = None
    created: set[str] = field(default_factory=set)

    def made(self, *keys: str) -> bool:
        return any(key in self.created for key in keys)
