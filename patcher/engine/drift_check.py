"""Drift seen by a run (SPEC section 13): a run that changes the schema says, before it applies
anything, how the live schema differs from the stored snapshot (``warnings`` and an audit row);
a dry run flags the drifted objects its pending scripts name (``DRIFTED_OBJECT``).

The snapshot itself is written by the backend with the history (``patcher/db/snapshot_store``);
this module only reads through the ``SchemaSnapshots`` port, which a backend may lack (the
in-memory fake): then there is nothing to say.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from patcher.core.errors import MissingSnapshot
from patcher.core.models import HistoryChange
from patcher.core.schema_drift import Difference, DriftReading, summary, touched
from patcher.engine.context import RunContext

AUDIT_OUTCOME = "drift"  # the audit log's outcome for a drift found before a run


@runtime_checkable
class SchemaSnapshots(Protocol):
    def schema_drift(self, ignore: Sequence[str]) -> DriftReading:
        """The stored snapshot against the live schema; ``MissingSnapshot`` when none."""
        ...

    def snapshot_note(self) -> str | None:
        """Why this run's history writes store no snapshot (None: they do)."""
        ...


def warn_before_apply(ctx: RunContext) -> None:
    """Before a run changes the schema: its drift, in ``warnings`` and the audit log."""
    port = ctx.backend
    if not isinstance(port, SchemaSnapshots):
        return
    note = port.snapshot_note()
    if note is not None:
        ctx.outcome.warnings.append(note)
    try:
        reading = port.schema_drift(ctx.options.drift_ignore)
    except MissingSnapshot:
        return  # nothing to hold the schema against yet; this run stores the first snapshot
    diffs = reading.comparison.differences
    if not diffs:
        return
    if reading.version != ctx.outcome.current_version:  # a stale snapshot: no false drift
        ctx.outcome.warnings.append(
            f"the schema snapshot is of version {reading.version}, the database is at version "
            f"{ctx.outcome.current_version} (a run stopped before it could store one): drift "
            "was not checked before this run; the snapshot it stores replaces it"
        )
        return
    text = (
        f"the schema has drifted from the snapshot of version {reading.version} "
        f"({len(diffs)} difference{'s' * (len(diffs) != 1)}: {summary(diffs)}); this run "
        "applies on top of it, and the snapshot it stores takes the drift in"
    )
    ctx.outcome.warnings.append(text)
    change = HistoryChange(None, "schema drift before the run", "up", "")
    ctx.backend.log(change, outcome=AUDIT_OUTCOME, error=text)


def flag_drifted(ctx: RunContext) -> None:
    """A dry run: a ``DRIFTED_OBJECT`` risk on every planned script that names a drifted
    object (or its table)."""
    port = ctx.backend
    if not isinstance(port, SchemaSnapshots):
        return
    try:
        reading = port.schema_drift(ctx.options.drift_ignore)
    except MissingSnapshot:
        return
    diffs = reading.comparison.differences
    if not diffs or reading.version != ctx.outcome.current_version:  # none, or a stale one
        return
    for step, entry in zip(ctx.plan.steps, ctx.outcome.entries, strict=True):
        script = ctx.scripts.get(step.key)
        if script is None or not step.kind.runs_sql:
            continue
        for statement in script.statement_texts:
            hits = touched(diffs, _names_in(statement))
            for diff in hits:
                entry.risks = [*(entry.risks or []), _risk(diff, statement, reading.version)]
            diffs = [d for d in diffs if d not in hits]  # each drifted object flagged once


_NAME = re.compile(
    r'(?:"([^"]+)"|([A-Za-z_][A-Za-z0-9_$]*))(?:\s*\.\s*(?:"([^"]+)"|([A-Za-z_][A-Za-z0-9_$]*)))?'
)


def _names_in(statement: str) -> set[str]:
    """Every ``schema.name`` a statement may name (an unqualified name read as ``public``'s:
    a guess that may flag too much, never too little, for the default search_path)."""
    names: set[str] = set()
    for m in _NAME.finditer(statement):
        first = m.group(1) or m.group(2).lower()
        second = m.group(3) or (m.group(4).lower() if m.group(4) else None)
        names.add(f"{first}.{second}" if second else f"public.{first}")
    return names


def _risk(diff: Difference, statement: str, version: int | None) -> dict[str, object]:
    clipped = statement if len(statement) <= 300 else statement[:300] + "…"
    return {
        "code": "DRIFTED_OBJECT",
        "statement": clipped,
        "explanation": (
            f"{diff.kind} {diff.object} was {diff.change} outside the migrations since the "
            f"snapshot of version {version}: this script was written against the schema the "
            "migrations made, not the one the database has. Check it (patcher drift) first"
        ),
        "table": diff.object,
    }
