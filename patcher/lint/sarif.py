"""``patcher lint --format sarif``: SARIF 2.1.0 for GitHub code scanning.

Every rule is in ``tool.driver.rules`` (id, summary, help in text and markdown, default level)
so code scanning shows the "why and what instead" beside each alert. Suppressed findings are
results too, with an ``inSource`` suppression carrying the comment's reason: code scanning then
lists them as dismissed instead of forgetting them. Local paths are relative URIs against
``%SRCROOT%`` (the repository checkout), S3 objects absolute ``s3://`` URIs.
"""

from __future__ import annotations

import json
from typing import Any, Final
from urllib.parse import quote

from patcher import __version__
from patcher.lint import Finding, LintReport
from patcher.sql.risks.codes import ALL_RULE_INFO as RULE_INFO

SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL: Final = {"error": "error", "warning": "warning", "info": "note"}
_INFORMATION_URI: Final = "https://github.com/stackflow/stackflowpatcher#lint-rules"


def sarif(report: LintReport) -> str:
    index = {code: i for i, code in enumerate(RULE_INFO)}
    results = [_result(f, index) for f in report.findings]
    results += [_result(f, index) for f in report.suppressed]
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "patcher lint",
                        "semanticVersion": __version__,
                        "informationUri": _INFORMATION_URI,
                        "rules": [_rule(code) for code in RULE_INFO],
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the checkout"}}},
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }
    return json.dumps(log, indent=2, ensure_ascii=False)


def _rule(code: str) -> dict[str, Any]:
    rule = RULE_INFO[code]
    help_text = rule.help + (f" A dry run also tells: {rule.database}." if rule.database else "")
    return {
        "id": code,
        "name": "".join(part.capitalize() for part in code.split("_"))
        + "Risk",  # != id (SARIF1001)
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.help},
        "help": {"text": help_text, "markdown": f"**{rule.summary}**\n\n{help_text}"},
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
        "properties": {"tags": ["postgresql", "migrations", rule.severity]},
    }


def _result(finding: Finding, index: dict[str, int]) -> dict[str, Any]:
    artifact: dict[str, str] = {"uri": _uri(finding.path)}
    if not finding.path.startswith(("s3://", "/")):
        artifact["uriBaseId"] = "%SRCROOT%"
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "ruleIndex": index[finding.code],
        "level": _LEVEL[finding.severity],
        "message": {"text": finding.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": artifact,
                    "region": {"startLine": finding.line, "startColumn": finding.column},
                }
            }
        ],
    }
    if finding.statement:
        region = result["locations"][0]["physicalLocation"]["region"]
        region["snippet"] = {"text": finding.statement}
    if finding.suppressed is not None:
        result["suppressions"] = [{"kind": "inSource", "justification": finding.suppressed}]
    return result


def _uri(path: str) -> str:
    """A relative URI for a path in the checkout, an absolute one otherwise."""
    if path.startswith("s3://"):
        return "s3://" + quote(path[5:])
    return "file://" + quote(path) if path.startswith("/") else quote(path)
