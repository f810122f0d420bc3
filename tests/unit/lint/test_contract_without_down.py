"""CONTRACT_WITHOUT_DOWN (SPEC 11): a contract version with no down script is a warning, since
an alias rollback past it cannot be matched by a database rollback. Lint sees the directory's
files: the down script beside an up script counts even when only the up script is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from patcher.cli.main import main
from patcher.lint import LintReport, lint_files
from patcher.lint.files import collect
from patcher.sql.risks.codes import info

CONTRACT = "ALTER TABLE users DROP COLUMN name;\n"
EXPAND = "ALTER TABLE users ADD COLUMN email text;\n"


def lint(*paths: Path) -> LintReport:
    return lint_files(collect([str(p) for p in paths]))


def of(report: LintReport, code: str = "CONTRACT_WITHOUT_DOWN") -> list[tuple[str, int]]:
    return [(Path(f.path).name, f.line) for f in report.findings if f.code == code]


def test_a_contract_version_without_down_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "0007_drop.up.sql").write_text("-- drops\n" + CONTRACT)
    report = lint(tmp_path)
    assert of(report) == [("0007_drop.up.sql", 2)]  # at its contract statement
    (finding,) = [f for f in report.findings if f.code == "CONTRACT_WITHOUT_DOWN"]
    assert finding.severity == "warning"
    assert "version 7 is a contract version and has no down script" in finding.message
    assert "alias rollback" in finding.message and "database rollback" in finding.message
    assert info("CONTRACT_WITHOUT_DOWN").severity == "warning"


def test_a_down_script_in_the_directory_silences_it(tmp_path: Path) -> None:
    (tmp_path / "0007_drop.up.sql").write_text(CONTRACT)
    (tmp_path / "0007_drop.down.sql").write_text("ALTER TABLE users ADD COLUMN name text;\n")
    assert of(lint(tmp_path)) == []
    assert of(lint(tmp_path / "0007_drop.up.sql")) == []  # given alone: its directory is seen
    assert of(lint(tmp_path), "BREAKS_PREVIOUS_RELEASE") == [("0007_drop.up.sql", 1)]


def test_an_expand_version_without_down_is_fine(tmp_path: Path) -> None:
    (tmp_path / "0007_add.up.sql").write_text(EXPAND)
    assert of(lint(tmp_path)) == []


def test_only_the_contract_version_without_down_is_named(tmp_path: Path) -> None:
    (tmp_path / "0007_add.up.sql").write_text(EXPAND)
    (tmp_path / "0008_drop.up.sql").write_text(CONTRACT)
    (tmp_path / "0009_ren.up.sql").write_text("ALTER TABLE users RENAME COLUMN a TO b;\n")
    (tmp_path / "0009_ren.down.sql").write_text("ALTER TABLE users RENAME COLUMN b TO a;\n")
    assert of(lint(tmp_path)) == [("0008_drop.up.sql", 1)]


def test_a_suppressed_contract_statement_needs_no_down(tmp_path: Path) -> None:
    (tmp_path / "0007_drop.up.sql").write_text(
        "-- patcher:ignore BREAKS_PREVIOUS_RELEASE no release reads it\n" + CONTRACT
    )
    report = lint(tmp_path)
    assert of(report) == [] and of(report, "UNUSED_SUPPRESSION") == []


def test_it_can_be_suppressed_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "0007_drop.up.sql").write_text(
        "-- patcher:ignore CONTRACT_WITHOUT_DOWN we roll forward\n" + CONTRACT
    )
    report = lint(tmp_path)
    assert of(report) == [] and of(report, "UNUSED_SUPPRESSION") == []
    assert [f.suppressed for f in report.suppressed if f.code == "CONTRACT_WITHOUT_DOWN"] == [
        "we roll forward"
    ]


def test_list_rules_has_the_release_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--list-rules"]) == 0
    out = capsys.readouterr().out
    for code in ("BREAKS_PREVIOUS_RELEASE", "MIXED_EXPAND_CONTRACT", "CONTRACT_WITHOUT_DOWN"):
        assert f"| `{code}` |" in out
