"""Dry-run previews: risks from PostgreSQL's parser, and verification in a rolled-back run."""

from __future__ import annotations

from collections.abc import Sequence

from patcher.core.errors import ChecksumMismatch, MigrationFailed
from patcher.core.models import Step, VerifyReport
from patcher.engine.context import RunContext
from patcher.engine.failures import migration_failed
from patcher.engine.outcome import ResultEntry
from patcher.sql.scripts import Script

_NOT_EXECUTED = (
    "no-transaction script: it cannot run inside a rolled-back transaction, so it "
    "was not executed; read its statements"
)


def add_risks(ctx: RunContext) -> None:
    """Every dry run: what each planned script risks, from PostgreSQL's own parser."""
    from patcher.sql.risks import analyze  # pglast loads only for previews

    sizes = ctx.preview.table_sizes()
    catalog = ctx.preview.catalog_facts()  # rewrites decided from pg_cast, pg_proc, the column
    for step, entry in zip(ctx.plan.steps, ctx.outcome.entries, strict=True):
        script = ctx.scripts.get(step.key)
        if script is not None and step.kind.runs_sql:
            risks = analyze(
                script.text,
                transactional=script.transactional,
                existing_tables=sizes,
                statements=script.statements,  # parsed one by one: never the whole script at once
                catalog=catalog,
            )
            if script.backfill is not None and step.direction == "up":
                from patcher.engine.backfill import preview_backfill

                risks = [r for r in risks if r.code != "UPDATE_WITHOUT_WHERE"]  # batched
                entry.backfill = preview_backfill(ctx, step, script)
            entry.risks = [r.to_dict() for r in risks]


def verify(ctx: RunContext) -> None:
    """Execute the planned transactional scripts in one rolled-back transaction; annotate."""
    runnable: list[tuple[Step, Script, ResultEntry]] = []
    for step, entry in zip(ctx.plan.steps, ctx.outcome.entries, strict=True):
        script = ctx.scripts[step.key]
        if script.transactional:
            runnable.append((step, script, entry))
        else:
            entry.verified = False
            entry.verify_note = _NOT_EXECUTED
            entry.statements = list(script.statement_texts)
    with ctx.watchdog() as dog:
        reports = ctx.preview.verify(
            [_texts(ctx, step, script) for step, script, _ in runnable],
            ctx.options.verify_lock_timeout_ms,
            dog.stop,
        )
    for (step, script, entry), report in zip(runnable, reports, strict=False):
        _annotate(ctx, step, script, entry, report)
    for _, _, entry in runnable[len(reports) :]:
        entry.verified = False
        entry.verify_note = "not verified: an earlier script stopped the verification"


def _texts(ctx: RunContext, step: Step, script: Script) -> Sequence[str]:
    """What verify runs of a script: all of it, or a backfill's next range."""
    if script.backfill is None or step.direction != "up":
        return script.statement_texts
    from patcher.engine.backfill import verify_range

    try:
        return [verify_range(ctx, step, script)]
    except (MigrationFailed, ChecksumMismatch):  # no table yet (an earlier version makes it)
        return script.statement_texts


def _annotate(
    ctx: RunContext, step: Step, script: Script, entry: ResultEntry, report: VerifyReport
) -> None:
    """One script's verification: what it did, or why it could not be verified."""
    entry.duration_ms = report.duration_ms
    entry.locks = [{"relation": rel, "mode": mode} for rel, mode in report.locks]
    entry.rewrites = report.rewrites
    entry.verified = report.failure is None
    failure = report.failure
    if failure is None:
        return
    error = migration_failed(step, script, failure)
    if failure.lock_not_available:
        entry.lock_conflict = {k: error.details.get(k) for k in ("line", "column")}
        ctx.outcome.warnings.append(
            f"verification of version {step.migration.version} could not get a lock "
            f"within {ctx.options.verify_lock_timeout_ms} ms at {script.obj.name} line "
            f"{error.details['line']}: another session holds a conflicting lock now; the "
            "real run would wait up to PATCHER_LOCK_TIMEOUT, then retry"
        )
    else:
        entry.state = "failed"
        entry.verify_note = (
            f"at line {error.details['line']}, column {error.details['column']}"
            f": {failure.message} (rolled back, nothing changed)"
        )
        ctx.outcome.status = "failed"
        ctx.outcome.error = MigrationFailed(
            f"verification (rolled back, nothing changed): {error.message}", **error.details
        )
