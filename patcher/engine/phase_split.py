"""``phase: "expand"``: apply the pending versions up to the first contract version (SPEC 11).

Every pending script of the plan is classified in order (``patcher.sql.phases``), with one
change set for all of them (what an earlier pending version creates is new to the previous
release) and the database's catalog when the backend can answer (a type change the catalog
shows to be a no-op or a widening is expand). The plan is cut before the first version that
holds a contract statement; it and every later version stay pending and are listed in the
result's ``held``: ``{"version", "description", "statements": [{"file", "line", "statement",
"reason"}]}``, the statements being each version's own contract statements (none for a version
held only because it comes after one). Nothing is classified for any other request.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from patcher.core.models import Step
from patcher.engine.context import RunContext


def split_for_expand(ctx: RunContext) -> None:
    """Cut ``ctx.plan`` before the first contract version and list what it holds back."""
    from patcher.sql.phases.classify import classify_script
    from patcher.sql.phases.model import ChangeSet

    change_set = ChangeSet(catalog=_catalog(ctx))
    held: list[dict[str, Any]] = []
    keep: list[Step] = []
    for step in ctx.plan.steps:
        script = ctx.scripts.get(step.key)
        statements: list[dict[str, Any]] = []
        if script is not None and step.kind.runs_sql:
            found = classify_script(script.text, script.statements, change_set)
            statements = [
                {
                    "file": script.obj.name,
                    "line": c.line,
                    "statement": c.statement,
                    "reason": _reason(c.verdict.kind, c.verdict.reason, c.verdict.recipe),
                }
                for c in found
                if c.holds
            ]
        if held or statements:
            held.append(_held(step, statements))
        else:
            keep.append(step)
    ctx.outcome.held = held
    if held:
        ctx.plan = replace(ctx.plan, steps=tuple(keep))
        first = held[0]
        shown = first["statements"][0]
        ctx.outcome.warnings.append(
            f"phase expand: held {len(held)} version(s) from version {first['version']} "
            f"({first['description']}) on, because {shown['file']} line {shown['line']} is "
            f"a contract statement ({shown['reason']}); run phase contract once the previous "
            "release can no longer receive traffic"
        )


def _held(step: Step, statements: list[dict[str, Any]]) -> dict[str, Any]:
    m = step.migration
    return {"version": m.version, "description": m.description, "statements": statements}


def _reason(kind: str, reason: str, recipe: str | None) -> str:
    text = f"{kind}: {reason}"
    return text + (f" (recipe: patcher new --recipe {recipe})" if recipe else "")


def _catalog(ctx: RunContext) -> Any:
    """The catalog facts of the run's session, or None for a backend that has none."""
    from patcher.engine.ports import PreviewBackend

    backend = ctx.backend
    return backend.catalog_facts() if isinstance(backend, PreviewBackend) else None


def apply_phase(ctx: RunContext) -> None:
    """The request's phase: expand cuts the plan; contract runs it all (the release gate, when
    configured, decides before this whether it may)."""
    if ctx.request.phase == "expand":
        split_for_expand(ctx)
    elif ctx.plan.steps:
        ctx.outcome.warnings.append(
            "phase contract without PATCHER_RELEASE_ALIAS: no release gate was checked; run "
            "it only once the previous release can no longer receive traffic (alias shifted, "
            "rollback window over)"
        )
