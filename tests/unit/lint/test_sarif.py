"""``patcher lint --format sarif`` passes Microsoft's SARIF validator (sarif-multitool).

The validator is the npm package @microsoft/sarif-multitool (a .NET build that runs offline),
installed under .local/node by ``make sarif-tool`` (``make test`` does it). Its ``validate``
verb checks the log against the SARIF 2.1.0 schema and its own rules, and writes its findings
as a SARIF log; any error or warning there fails the test.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from patcher.cli.main import main
from patcher.sql.risks.codes import ALL_RULE_INFO

REPO = Path(__file__).resolve().parents[3]
VALIDATOR = REPO / ".local" / "node" / "node_modules" / ".bin" / "sarif-multitool"


def validate(log: Path, tmp_path: Path) -> list[dict[str, Any]]:
    """The validator's results for a SARIF file (errors, warnings and notes)."""
    if not VALIDATOR.exists():
        pytest.fail(f"{VALIDATOR} is missing: run 'make sarif-tool'")
    out = tmp_path / "validation.sarif"
    proc = subprocess.run(
        [str(VALIDATOR), "validate", str(log), "--output", str(out), "--log", "ForceOverwrite"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"DOTNET_CLI_TELEMETRY_OPTOUT": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert out.exists(), proc.stdout + proc.stderr
    results: list[dict[str, Any]] = json.loads(out.read_text())["runs"][0]["results"]
    return results


def serious(results: list[dict[str, Any]]) -> list[str]:
    return [
        f"{r['ruleId']}: {r['message']}" for r in results if r.get("level", "warning") != "note"
    ]


@pytest.fixture
def sarif_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "1_init.up.sql").write_text("CREATE TABLE t (id int PRIMARY KEY, at timestamp);")
    (migrations / "2_change.up.sql").write_text(
        "-- patcher:ignore DROP_COLUMN agreed in review\n\n"
        "ALTER TABLE users DROP COLUMN legacy;\n"
        "CREATE INDEX users_a ON users (a);\n"
        "-- patcher:ignore RENAME nothing renamed here\n"
        "UPDATE users SET nick = 'Zoë 🚀';\n"
    )
    (migrations / "2_change.down.sql").write_text("DROP VIEW report CASCADE;")
    assert main(["lint", "--format", "sarif", str(migrations)]) == 1
    log = tmp_path / "lint.sarif"
    log.write_text(capsys.readouterr().out)
    return log


def test_sarif_passes_the_validator(sarif_log: Path, tmp_path: Path) -> None:
    assert serious(validate(sarif_log, tmp_path)) == []


def test_sarif_carries_rules_help_regions_and_suppressions(sarif_log: Path) -> None:
    log = json.loads(sarif_log.read_text())
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(ALL_RULE_INFO)  # the release rules too
    assert all(r["help"]["text"] and r["shortDescription"]["text"] for r in rules)
    by_rule = {r["ruleId"]: r for r in run["results"]}
    drop = by_rule["DROP_COLUMN"]
    assert drop["suppressions"] == [{"kind": "inSource", "justification": "agreed in review"}]
    location = by_rule["INDEX_NOT_CONCURRENT"]["locations"][0]["physicalLocation"]
    assert location["region"]["startLine"] == 4 and location["region"]["startColumn"] == 1
    assert location["artifactLocation"]["uri"].endswith("migrations/2_change.up.sql")
    assert rules[by_rule["INDEX_NOT_CONCURRENT"]["ruleIndex"]]["id"] == "INDEX_NOT_CONCURRENT"
    assert by_rule["UNUSED_SUPPRESSION"]["level"] == "warning"
    assert by_rule["DROP_CASCADE"]["level"] == "error"
    assert by_rule["PREFER_BIGINT"]["level"] == "note"
    assert by_rule["BREAKS_PREVIOUS_RELEASE"]["level"] == "error"
    assert by_rule["BREAKS_PREVIOUS_RELEASE"]["message"]["text"].startswith("contract (")


def test_the_validator_rejects_a_broken_log(sarif_log: Path, tmp_path: Path) -> None:
    log = json.loads(sarif_log.read_text())
    del log["runs"][0]["tool"]["driver"]["name"]
    log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    broken = tmp_path / "broken.sarif"
    broken.write_text(json.dumps(log))
    assert len(serious(validate(broken, tmp_path))) >= 2
