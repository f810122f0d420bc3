"""The data_at_risk summary line and the markdown result (no database)."""

from __future__ import annotations

from typing import Any

from patcher.cli.markdown import MAX_CHARS, SQL_CHARS, render_markdown
from patcher.cli.report import render
from patcher.cli.report_at_risk import summary

APPLIED_13 = "2026-11-30T14:02:41.5+00:00"
APPLIED_14 = "2026-12-01T09:00:00+00:00"


def item(
    relation: str, column: str | None, change: str, rows: int | None, **extra: Any
) -> dict[str, Any]:
    return {
        "relation": relation, "column": column, "rows": rows, "change": change,
        "written_since_applied": extra.pop("new", False), "estimated": extra.pop("est", False),
        **extra,
    }  # fmt: skip


def result(*entries: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "ok": True, "action": "rollback", "dry_run": True, "status": "planned",
        "current_version": 14, "migrations": list(entries), "pending": [], "warnings": [],
        "error": None, "request_id": "r-1", "duration_ms": 42, **extra,
    }  # fmt: skip


def entry(version: int, applied_at: str, *items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "version": version, "description": f"v{version}", "direction": "down",
        "state": "planned", "checksum": "c", "transactional": True, "applied_at": applied_at,
        "sql": "DROP TABLE x;", "risks": [], "data_at_risk": list(items), **extra,
    }  # fmt: skip


def test_everything_created_by_the_versions_reads_all_written_since_the_oldest() -> None:
    r = result(
        entry(14, APPLIED_14, item("public.votes", None, "drop", 12_000, new=True)),
        entry(13, APPLIED_13, item("public.badges", None, "drop", 408, new=True),
              item("public.users", "karma", "drop_column", 3_112, new=True)),
    )  # fmt: skip
    assert summary(r) == (
        "rollback of 14, 13 would drop 12,408 rows and 3,112 values, all written since "
        "2026-11-30 14:02 UTC"
    )


def test_a_pre_existing_column_says_how_much_of_it_is_dated_since() -> None:
    r = result(entry(14, APPLIED_14, item("public.users", "bio", "drop_column", 120,
                                          rows_since_applied=25)))  # fmt: skip
    assert summary(r) == (
        "rollback of 14 would drop 120 values, 25 of them written since 2026-12-01 09:00 UTC"
    )


def test_estimated_unknown_and_undated_figures_say_so() -> None:
    r = result(
        entry(14, APPLIED_14,
              item("public.big", None, "drop", 10_000_000, est=True),
              item("public.gone", None, "truncate", None, est=True),
              item("public.users", None, "update", 4, rows_since_applied=1)),
    )  # fmt: skip
    assert summary(r) == (
        "rollback of 14 would drop about 10,000,000 rows and an unknown number of rows in 1 "
        "more place(s), and overwrite 4 rows, 1 of them written since 2026-12-01 09:00 UTC; "
        "10,000,000 could not be dated"
    )


def test_nothing_at_risk_and_nothing_written_since() -> None:
    assert summary(result(entry(14, APPLIED_14))) == "rollback of 14 would drop no rows or values"
    r = result(entry(14, APPLIED_14, item("public.t", None, "delete", 5, rows_since_applied=0)))
    assert (
        summary(r)
        == "rollback of 14 would drop 5 rows, none of it written since 2026-12-01 09:00 UTC"
    )


def test_markdown_has_the_summary_a_table_per_version_and_the_verification() -> None:
    r = result(
        entry(14, APPLIED_14, item("public.votes", None, "drop", 30, new=True),
              item("public.a|b", "note", "drop_column", 10, rows_since_applied=3),
              verified=True, duration_ms=7, locks=[{"relation": "public.votes",
              "mode": "AccessExclusiveLock"}], rewrites=[]),
    )  # fmt: skip
    md = render_markdown(r)
    assert md.startswith("### ✅ patcher rollback (dry run): `planned`")
    assert "**rollback of 14 would drop 30 rows and 10 values, 33 of them written since" in md
    assert "#### 14 v14 (down, transactional)" in md
    assert "| public.votes | - | drop | 30 | all (created by this version) |" in md
    assert "| public.a\\|b | note | drop_column | 10 | 3 |" in md  # a pipe cannot break the row
    assert "Verify: ran in 7 ms and rolled back · locks on existing tables: `public.votes` " \
           "AccessExclusiveLock · rewrites: none" in md  # fmt: skip
    assert "```sql\nDROP TABLE x;\n```" in md


def test_text_report_shows_the_same_summary_and_table() -> None:
    r = result(entry(14, APPLIED_14, item("public.votes", None, "drop", 30, new=True)))
    text = render(r)
    assert "data at risk: rollback of 14 would drop 30 rows, all written since" in text
    assert "public.votes  -       drop    30    all (created by this version)" in text


def test_migrate_preview_in_markdown_lists_risks_locks_rewrites_and_durations() -> None:
    up = {
        "version": 3, "description": "idx", "direction": "up", "state": "planned",
        "checksum": "c", "transactional": True, "sql": "SELECT 1;" + "x" * (SQL_CHARS * 2),
        "risks": [{"code": "TABLE_REWRITE", "statement": "ALTER TABLE t ...",
                   "explanation": "rewrites t"}],
        "verified": True, "duration_ms": 12, "locks": [], "rewrites": ["public.t"],
    }  # fmt: skip
    md = render_markdown(result(up, action="migrate"))
    assert "data at risk" not in md.lower()
    assert "| TABLE_REWRITE | rewrites t | ALTER TABLE t ... |" in md
    assert "rewrites: `public.t`" in md and "ran in 12 ms" in md
    assert "-- … (cut)" in md and len(md) < SQL_CHARS * 2


def test_markdown_stays_within_a_job_summary() -> None:
    entries = [entry(v, APPLIED_14, sql="x" * SQL_CHARS) for v in range(5_000)]
    md = render_markdown(result(*entries))
    assert len(md) <= MAX_CHARS and md.endswith("the JSON result has everything)_\n")
