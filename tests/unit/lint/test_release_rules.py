"""Lint's release rules (SPEC 11): BREAKS_PREVIOUS_RELEASE and MIXED_EXPAND_CONTRACT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patcher.cli.main import main
from patcher.lint import LintReport, lint_script
from patcher.sql.phases.model import ChangeSet


def lint(sql: str, phases: ChangeSet | None = None) -> LintReport:
    report = LintReport()
    lint_script("7_x.up.sql", sql.encode(), report, set(), phases or ChangeSet())
    return report


def codes(report: LintReport) -> list[str]:
    return [f.code for f in report.findings]


@pytest.mark.parametrize(
    ("sql", "recipe"),
    [
        ("ALTER TABLE users RENAME COLUMN a TO b;", "rename-column"),
        ("ALTER TABLE users ALTER COLUMN a TYPE bigint;", "change-type"),
        ("ALTER TABLE users ALTER COLUMN a SET NOT NULL;", "set-not-null"),
        (
            "ALTER TABLE users ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES o (id);",
            "add-foreign-key",
        ),
        ("ALTER TABLE users ADD CONSTRAINT u UNIQUE (a);", "add-unique"),
        ("ALTER TABLE users ADD CONSTRAINT c CHECK (a > 0) NOT VALID;", "add-check"),
    ],
)
def test_a_contract_statement_is_an_error_naming_its_recipe(sql: str, recipe: str) -> None:
    (finding,) = [f for f in lint(sql).findings if f.code == "BREAKS_PREVIOUS_RELEASE"]
    assert finding.severity == "error"
    assert finding.statement == sql.rstrip(";")
    assert f"patcher new --recipe {recipe}" in finding.message


def test_the_near_misses_do_not_fire() -> None:
    assert "BREAKS_PREVIOUS_RELEASE" not in codes(lint("ALTER TABLE users ADD COLUMN a text;"))
    fresh = "CREATE TABLE t (a bigint);\nALTER TABLE t ADD CONSTRAINT u UNIQUE (a);"
    assert "BREAKS_PREVIOUS_RELEASE" not in codes(lint(fresh))


def test_the_change_set_carries_over_files() -> None:
    phases = ChangeSet()
    lint("CREATE TABLE t (a bigint);", phases)
    assert "BREAKS_PREVIOUS_RELEASE" not in codes(lint("DROP TABLE t;", phases))
    assert "BREAKS_PREVIOUS_RELEASE" in codes(lint("DROP TABLE t;"))


def test_type_change_is_contract_whatever_the_catalog_says() -> None:
    (finding,) = [
        f
        for f in lint("ALTER TABLE users ALTER COLUMN a TYPE text;").findings
        if f.code == "BREAKS_PREVIOUS_RELEASE"
    ]
    assert "change-type" in finding.message
    assert "may find it expand" not in finding.message  # prepared queries break even so


def test_a_mixed_version_is_a_warning_and_the_pure_ones_are_not() -> None:
    mixed = "ALTER TABLE users ADD COLUMN a text;\nALTER TABLE users DROP COLUMN b;"
    report = lint(mixed)
    (warning,) = [f for f in report.findings if f.code == "MIXED_EXPAND_CONTRACT"]
    assert warning.severity == "warning" and warning.line == 2
    assert "split" in warning.message
    assert "MIXED_EXPAND_CONTRACT" not in codes(lint("ALTER TABLE users DROP COLUMN b;"))
    assert "MIXED_EXPAND_CONTRACT" not in codes(lint("ALTER TABLE users ADD COLUMN a text;"))


def test_suppressed_with_a_reason_and_reported_as_used() -> None:
    sql = "-- patcher:ignore BREAKS_PREVIOUS_RELEASE v3 stopped reading it\nDROP VIEW v;"
    report = lint(sql)
    assert "BREAKS_PREVIOUS_RELEASE" not in codes(report)
    assert "UNUSED_SUPPRESSION" not in codes(report)
    assert [f.suppressed for f in report.suppressed if f.code == "BREAKS_PREVIOUS_RELEASE"] == [
        "v3 stopped reading it"
    ]


def test_down_scripts_are_not_held_to_the_release_rules(tmp_path: Path) -> None:
    (tmp_path / "1_x.up.sql").write_text("CREATE TABLE t (a bigint);\n")
    (tmp_path / "1_x.down.sql").write_text("DROP TABLE users;\n")
    (tmp_path / "2_y.up.sql").write_text("DROP TABLE t;\n")  # made by version 1
    report = lint_dir(tmp_path)
    assert "BREAKS_PREVIOUS_RELEASE" not in {f["code"] for f in report["findings"]}


def test_sarif_and_markdown_carry_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "1_x.up.sql").write_text(
        "ALTER TABLE u ADD COLUMN a text;\nALTER TABLE u DROP COLUMN b;\n"
    )
    main(["lint", "--format", "sarif", str(tmp_path)])
    run = json.loads(capsys.readouterr().out)["runs"][0]
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels["BREAKS_PREVIOUS_RELEASE"] == "error"
    assert levels["MIXED_EXPAND_CONTRACT"] == "warning"
    main(["lint", "--format", "markdown", str(tmp_path)])
    out = capsys.readouterr().out
    assert "| 2 | 🛑 error | `BREAKS_PREVIOUS_RELEASE` |" in out
    assert "`MIXED_EXPAND_CONTRACT`" in out


def lint_dir(path: Path) -> dict[str, list[dict[str, object]]]:
    from patcher.lint import lint_files
    from patcher.lint.files import collect

    return {"findings": [f.to_dict() for f in lint_files(collect([str(path)])).findings]}


def test_a_declared_contract_version_is_not_reported_as_breaking() -> None:
    """``-- patcher:contract`` in the leading comments (what the recipes write): breaking the
    previous release is the version's purpose, so lint does not report it; the same statement
    without the declaration, or with it after the first statement, is an error."""
    sql = "ALTER TABLE users DROP COLUMN legacy;\n"
    assert "BREAKS_PREVIOUS_RELEASE" in codes(lint(sql))
    assert "BREAKS_PREVIOUS_RELEASE" not in codes(lint("-- patcher:contract (recipe x)\n" + sql))
    late = "SELECT 1;\n-- patcher:contract\n" + sql
    assert "BREAKS_PREVIOUS_RELEASE" in codes(lint(late))


def test_declares_contract_reads_the_leading_comments_only() -> None:
    from patcher.sql.phases.declared import declares_contract

    assert declares_contract("-- patcher:no-transaction\n-- patcher:contract\nDROP TABLE t;")
    assert declares_contract("\n  -- PATCHER:CONTRACT: drop the old column\nDROP TABLE t;")
    assert not declares_contract("DROP TABLE t; -- patcher:contract\n")
    assert not declares_contract("-- patcher:contractor\nDROP TABLE t;")
    assert not declares_contract("-- the contract version\nDROP TABLE t;")
