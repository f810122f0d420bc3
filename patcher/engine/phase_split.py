"""``phase: "expand"``: apply the pending versions up to the first contract version (SPEC 11).

Every pending script of the plan is classified in order (``patcher.sql.phases``), with one
change set for all of them (what an earlier pending version creates is new to the previous
release) and the database's catalog when the backend can answer. The plan is cut before the
first version that holds a contract statement; it and every later version stay pending and are
listed in the result's ``held``: ``{"version", "description", "statements": [{"file", "line",
"statement", "reason"}]}``, the statements being each version's own contract statements (none
for a version held only because it comes after one). Nothing is classified for any other
request.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from patcher.core.models import Step
from patcher.engine.context import RunContext


def classify_plan(ctx: RunContext) -> list[tuple[Step, list[dict[str, Any]]]]:
    """Each planned step with the contract statements (not waived) of its script."""
    from patcher.sql.phases.classify import classify_script
    from patcher.sql.phases.declared import declares_contract
    from patcher.sql.phases.model import ChangeSet

    change_set = ChangeSet(catalog=_catalog(ctx))
    out: list[tuple[Step, list[dict[str, Any]]]] = []
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
            if not statements and declares_contract(script.text):
                statements = [_declared(script.obj.name)]
        out.append((step, statements))
    return out


def _declared(name: str) -> dict[str, Any]:
    reason = "the version is declared a contract version (-- patcher:contract)"
    return {"file": name, "line": 1, "statement": "-- patcher:contract", "reason": reason}


def first_contract(ctx: RunContext) -> Step | None:
    """The first planned step whose script holds a contract statement."""
    return next((step for step, statements in classify_plan(ctx) if statements), None)


def split_for_expand(ctx: RunContext) -> None:
    """Cut ``ctx.plan`` before the first contract version and list what it holds back."""
    held: list[dict[str, Any]] = []
    keep: list[Step] = []
    for step, statements in classify_plan(ctx):
        if held or statements:
            held.append(_held(step, statements))
        else:
            keep.append(step)
    ctx.outcome.held = held
    if held:
        first_step = ctx.plan.steps[len(keep)]
        ctx.plan = replace(ctx.plan, steps=tuple(keep))
        first = held[0]
        shown = first["statements"][0]
        ctx.outcome.warnings.append(
            f"phase expand: held {len(held)} version(s) from version {first['version']} "
            f"({first['description']}) on, because {shown['file']} line {shown['line']} is "
            f"a contract statement ({shown['reason']}); run phase contract once the previous "
            "release can no longer receive traffic"
        )
        from patcher.engine.release_gate import record_live_version

        record_live_version(ctx, first_step.migration)


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


def apply_phase(ctx: RunContext) -> bool:
    """The request's phase, before anything runs: expand cuts the plan; contract reads the
    release gate when one is configured. True when the gate holds the whole run."""
    if ctx.request.phase == "expand":
        split_for_expand(ctx)
        return False
    if not ctx.plan.steps:
        return False
    if ctx.options.release_gate is None:
        ctx.outcome.warnings.append(
            "phase contract without PATCHER_RELEASE_ALIAS: no release gate was checked; run "
            "it only once the previous release can no longer receive traffic (alias shifted, "
            "rollback window over)"
        )
        return False
    from patcher.engine.release_gate import check

    first = first_contract(ctx)
    if first is None or not check(ctx, first):
        return False
    ctx.plan = replace(ctx.plan, steps=())
    return True


def execute_contract(ctx: RunContext) -> None:
    """Run a contract phase's steps; with a release gate, the alias is read again just before
    the first contract version (expand versions before it run first)."""
    from patcher.engine.release_gate import check
    from patcher.engine.steps import execute_steps

    first = first_contract(ctx) if ctx.options.release_gate is not None else None
    steps = ctx.plan.steps
    if first is None or steps.index(first) == 0:
        execute_steps(ctx)
        return
    whole, cut = ctx.plan, steps.index(first)
    ctx.plan = replace(whole, steps=steps[:cut])
    execute_steps(ctx)
    if ctx.outcome.status != "applied":  # partial: the next invocation goes on
        return
    if check(ctx, first):
        ctx.outcome.status = "held"
        return
    ctx.history = ctx.backend.read_history()
    ctx.plan = replace(whole, steps=steps[cut:], pending=tuple(ctx.outcome.pending))
    execute_steps(ctx)
