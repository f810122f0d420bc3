"""Dry-run previews: risks from PostgreSQL's parser, and verification in a rolled-back run."""

from __future__ import annotations

from patcher.core.errors import MigrationFailed
from patcher.core.models import Plan
from patcher.db.postgres import PostgresBackend
from patcher.engine.outcome import Deadline, Outcome, RunOptions
from patcher.engine.steps import migration_failed, timeout_source
from patcher.sql.scripts import Script


def add_risks(
    backend: PostgresBackend,
    the_plan: Plan,
    scripts: dict[tuple[int, str], Script],
    outcome: Outcome,
) -> None:
    """Every dry run: what each planned script risks, from PostgreSQL's own parser."""
    from patcher.sql.risks import analyze  # pglast loads only for previews

    sizes = backend.table_sizes()
    for step, entry in zip(the_plan.steps, outcome.entries, strict=True):
        script = scripts.get((step.migration.version, step.direction))
        if script is not None and step.kind == "run":
            risks = analyze(script.text, transactional=script.transactional, existing_tables=sizes)
            entry["risks"] = [r.to_dict() for r in risks]


def verify(
    backend: PostgresBackend,
    the_plan: Plan,
    scripts: dict[tuple[int, str], Script],
    opts: RunOptions,
    deadline: Deadline,
    outcome: Outcome,
) -> None:
    """Execute the planned transactional scripts in one rolled-back transaction; annotate."""
    runnable = []
    for step, entry in zip(the_plan.steps, outcome.entries, strict=True):
        script = scripts[(step.migration.version, step.direction)]
        if script.transactional:
            runnable.append((step, script, entry))
        else:
            entry["verified"] = False
            entry["verify_note"] = (
                "no-transaction script: it cannot run inside a rolled-back transaction, so it "
                "was not executed; read its statements"
            )
            entry["statements"] = list(script.statement_texts)
    reports = backend.verify(
        [script.statement_texts for _, script, _ in runnable],
        opts.verify_lock_timeout_ms,
        timeout_source(opts, deadline),
    )
    for (step, script, entry), report in zip(runnable, reports, strict=False):
        entry["duration_ms"] = report.duration_ms
        entry["locks"] = [{"relation": rel, "mode": mode} for rel, mode in report.locks]
        entry["rewrites"] = report.rewrites
        entry["verified"] = report.failure is None
        failure = report.failure
        if failure is None:
            continue
        error = migration_failed(step, script, failure)
        if failure.lock_not_available:
            entry["lock_conflict"] = {k: error.details.get(k) for k in ("line", "column")}
            outcome.warnings.append(
                f"verification of version {step.migration.version} could not get a lock "
                f"within {opts.verify_lock_timeout_ms} ms at {script.obj.name} line "
                f"{error.details['line']}: another session holds a conflicting lock now; the "
                "real run would wait up to PATCHER_LOCK_TIMEOUT, then retry"
            )
        else:
            entry["state"] = "failed"
            outcome.status = "failed"
            outcome.error = MigrationFailed(
                f"verification (rolled back, nothing changed): {error.message}", **error.details
            )
    for _, _, entry in runnable[len(reports) :]:
        entry["verified"] = False
        entry["verify_note"] = "not verified: an earlier script stopped the verification"
