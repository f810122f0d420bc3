"""The release gate (SPEC 11): a contract run changes nothing while the application's alias
routes to more than one version, or still routes to the version that was live when the first
pending contract version was held (recorded in the audit log by the expand run that held it).

The alias is read through ``RunOptions.release_gate`` (``patcher.app.release``: lambda:GetAlias);
an error reading it is a ``ConfigError`` raised before anything changes. The contract run reads
it once when it plans, and again just before the first contract version runs: an alias that
moved back meanwhile still stops the run (what ran before it were expand versions).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from patcher.core.models import HistoryChange, Migration, Step
from patcher.engine.context import RunContext


@runtime_checkable
class ReleaseLog(Protocol):
    """What the gate reads from the audit log (``PostgresBackend.held_since``)."""

    def held_since(self, version: int) -> str | None:
        """The alias version recorded as live when ``version`` was first held, or None."""
        ...


def record_live_version(ctx: RunContext, held: Migration) -> None:
    """Expand with the alias set: note in the audit log which version was live when ``held``
    was first held (once per version; never in a dry run)."""
    gate = ctx.options.release_gate
    if gate is None or ctx.request.dry_run:
        return
    routing = gate()
    ctx.outcome.release = {**routing, "held_since_version": None}
    backend = ctx.backend
    if isinstance(backend, ReleaseLog) and backend.held_since(held.version) is not None:
        ctx.outcome.release["held_since_version"] = backend.held_since(held.version)
        return
    backend.ensure_tables()
    change = HistoryChange(held.version, held.description, "up", "")
    backend.log(change, outcome="held", error=_routed(routing))
    ctx.outcome.release["held_since_version"] = routing["version"]


def _routed(routing: dict[str, Any]) -> str:
    """The audit row's text; ``patcher.db.release_log.held_since`` reads the version back."""
    return f"release alias {routing['alias']} routed to version {routing['version']}"


def check(ctx: RunContext, step: Step) -> bool:
    """Read the alias now; True when the gate holds ``step`` (then ``outcome.release`` says
    why)."""
    gate = ctx.options.release_gate
    if gate is None:
        return False
    routing = gate()
    backend = ctx.backend
    since = backend.held_since(step.migration.version) if isinstance(backend, ReleaseLog) else None
    ctx.outcome.release = {**routing, "held_since_version": since}
    if routing["weights"]:
        why = f"routes to versions {routing['version']} and {', '.join(routing['weights'])}"
    elif since is not None and routing["version"] == since:
        why = f"still routes to version {since}, the one live when version was held"
    else:
        return False
    ctx.outcome.warnings.append(
        f"release gate: the alias {routing['alias']} {why}: the previous release may still "
        f"serve traffic, so version {step.migration.version} ({step.migration.description}) "
        "and everything after it wait; invoke again once the shift is complete"
    )
    return True


def hold_from(ctx: RunContext, step: Step) -> None:
    """Cut the plan before ``step``: it and every later step stay pending."""
    steps = ctx.plan.steps
    ctx.plan = replace(ctx.plan, steps=steps[: steps.index(step)])
