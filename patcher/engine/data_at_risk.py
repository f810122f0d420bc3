"""Rollback previews: what each down script would destroy (SPEC section 4, ``data_at_risk``).

Each down step's entry gets a list of items ``{"relation", "column", "rows",
"written_since_applied", "change", "estimated"}`` (``rows`` counts values when ``column`` is
set) and, where the version did not create the object, ``rows_since_applied``: how many of
those rows were written (inserted or updated) after the version was applied.

Without ``verify`` the backend counts the probes parsed from each script
(``patcher.sql.at_risk``) under a short statement_timeout, falling back to statistics; with
``verify`` it runs the transactional scripts in a rolled-back transaction and measures. Which
objects the version created comes from its up script (CREATE TABLE, ADD COLUMN).
"""

from __future__ import annotations

import time
from typing import Any, Final

from patcher.core.data_loss import DROP, Created, Loss, Probe
from patcher.core.models import Step
from patcher.engine.context import RunContext
from patcher.engine.outcome import ResultEntry
from patcher.sources.base import MigrationSource
from patcher.sql.at_risk import created, probes
from patcher.sql.classify import decode_script
from patcher.sql.lexer import split_statements

MAX_ITEMS: Final = 100
"""Items per entry (the largest first); the rest are counted in ``data_at_risk_truncated``."""


def add_data_at_risk(ctx: RunContext, source: MigrationSource) -> None:
    """Annotate every down step of a rollback preview with what it would destroy."""
    steps = [
        (step, entry)
        for step, entry in zip(ctx.plan.steps, ctx.outcome.entries, strict=True)
        if step.direction == "down" and step.kind.runs_sql and step.key in ctx.scripts
    ]
    if not steps:
        return
    try:
        made = _created(source, [step for step, _ in steps])
        found = _probes(ctx, [step for step, _ in steps])
    except ImportError:  # pglast is the optional "risks" extra until it becomes a core one
        ctx.outcome.warnings.append(
            "data_at_risk: not reported, because pglast is missing to read the scripts; "
            "install stackflowpatcher[risks]"
        )
        return
    measured = _measured(ctx, steps, found) if ctx.request.verify else {}
    applied = {row.version: row.applied_at for row in ctx.history}
    started = time.perf_counter()
    options = ctx.options
    for step, entry in steps:
        version = step.migration.version
        losses = measured.get(version)
        mine = made.get(version, Created())
        if losses is None:
            left = options.count_budget_ms - int((time.perf_counter() - started) * 1000)
            losses = ctx.preview.estimate_at_risk(
                found[version], version, options.count_timeout_ms, max(0, left), mine
            )
        when = applied.get(version)
        entry.applied_at = when.isoformat() if when is not None else None
        _annotate(entry, losses, mine)


def _created(source: MigrationSource, steps: list[Step]) -> dict[int, Created]:
    """What each reverted version's up script created."""
    ups = {step.migration.up.key: step.migration.version for step in steps}
    out: dict[int, Created] = {}
    objs = [step.migration.up for step in steps]
    for obj, data in source.read_many(objs):
        text = decode_script(obj.name, data)
        out[ups[obj.key]] = created(s.text for s in split_statements(text))
    return out


def _probes(ctx: RunContext, steps: list[Step]) -> dict[int, list[Probe]]:
    """Each down script's probes, leaving out tables an earlier script of the run drops."""
    gone: set[str] = set()
    out: dict[int, list[Probe]] = {}
    for step in steps:
        mine = [p for p in probes(ctx.scripts[step.key].statement_texts) if p.key not in gone]
        gone |= {p.key for p in mine if p.change == DROP}
        out[step.migration.version] = mine
    return out


def _measured(
    ctx: RunContext, steps: list[tuple[Step, ResultEntry]], found: dict[int, list[Probe]]
) -> dict[int, list[Loss]]:
    """Exact losses of the leading transactional scripts (a no-transaction one cannot run in
    the rolled-back transaction: it and those after it are estimated)."""
    if ctx.outcome.status == "failed":
        return {}  # verification failed: the scripts do not run as they are; estimate only
    runnable: list[Step] = []
    for step, _ in steps:
        if not ctx.scripts[step.key].transactional:
            break
        runnable.append(step)
    if not runnable:
        return {}
    versions = [s.migration.version for s in runnable]
    with ctx.watchdog() as dog:
        losses, failure = ctx.preview.measure_at_risk(
            [ctx.scripts[s.key].statement_texts for s in runnable],
            versions,
            [found[v] for v in versions],
            ctx.options.verify_lock_timeout_ms,
            dog.stop,
        )
    if failure is not None:
        ctx.outcome.warnings.append(
            f"data_at_risk: measuring in the rolled-back transaction stopped at version "
            f"{versions[len(losses)]} ({failure.message}); its counts and those after it are "
            "estimated from the catalog"
        )
    return dict(zip(versions, losses, strict=False))


def _annotate(entry: ResultEntry, losses: list[Loss], made: Created) -> None:
    items = [_item(loss, made) for loss in losses]
    if len(items) > MAX_ITEMS:
        items.sort(key=lambda i: -(i["rows"] or 0))
        entry.data_at_risk_truncated = len(items) - MAX_ITEMS
        items = items[:MAX_ITEMS]
    entry.data_at_risk = items


def _item(loss: Loss, made: Created) -> dict[str, Any]:
    new = made.holds(loss.relation, loss.column)
    item: dict[str, Any] = {
        "relation": loss.relation,
        "column": loss.column,
        "rows": loss.rows,
        "written_since_applied": new,
        "change": loss.change,
        "estimated": loss.estimated,
    }
    if not new and loss.since is not None:
        item["rows_since_applied"] = loss.since
    if loss.note:
        item["note"] = loss.note[:300]
    return item
