"""``patcher lint --format text|json|github|markdown`` (``sarif`` is in ``patcher.lint.sarif``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Final

from patcher.lint import Finding, LintReport
from patcher.sql.risks.codes import info

_GITHUB_LEVEL: Final = {"error": "error", "warning": "warning", "info": "notice"}
_ICON: Final = {"error": "🛑", "warning": "⚠️", "info": "ℹ️"}  # noqa: RUF001


def context(report: LintReport) -> list[str]:
    """The lines that say what the change set was measured against (base, database)."""
    return [line for line in (report.base, report.database) if line]


def summary(report: LintReport) -> str:
    counts = report.counts()
    files = len(report.files)
    parts = [f"{counts[s]} {s}{'s' if counts[s] != 1 and s != 'info' else ''}" for s in counts]
    total = len(report.findings)
    line = f"{total} finding{'s' if total != 1 else ''} ({', '.join(parts)}) in {files} file"
    line += "s" if files != 1 else ""
    if report.suppressed:
        line += f"; {len(report.suppressed)} suppressed by patcher:ignore"
    return line


def text(report: LintReport) -> str:
    """One ``file:line:col: severity CODE message`` per finding, the statement under it."""
    lines = context(report)
    for f in report.findings:
        lines.append(f"{f.path}:{f.line}:{f.column}: {f.severity} {f.code}: {f.message}")
        if f.statement:
            lines.append(f"    {f.statement.splitlines()[0]}")
    lines.append(summary(report))
    return "\n".join(lines)


def as_json(report: LintReport) -> str:
    return json.dumps(
        {
            "files": report.files,
            "findings": [f.to_dict() for f in report.findings],
            "suppressed": [{**f.to_dict(), "reason": f.suppressed} for f in report.suppressed],
            "counts": report.counts(),
            **{k: v for k, v in (("base", report.base), ("database", report.database)) if v},
        },
        indent=2,
        ensure_ascii=False,
    )


def github(report: LintReport) -> str:
    """GitHub Actions workflow commands: ``::warning file=…,line=…,col=…,title=…::message``.

    Escaping as the runner's own toolkit does (actions/toolkit ``command.ts``): in the message
    ``%``, CR and LF; in property values also ``:`` and ``,``.
    """
    lines = []
    for f in report.findings:
        props = ",".join(
            f"{key}={_escape_property(str(value))}"
            for key, value in (
                ("file", f.path),
                ("line", f.line),
                ("col", f.column),
                ("title", f"{f.code}: {info(f.code).summary}"),
            )
        )
        lines.append(f"::{_GITHUB_LEVEL[f.severity]} {props}::{_escape_data(f.message)}")
    lines.append("; ".join([summary(report), *context(report)]))  # every other line a command
    return "\n".join(lines)


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def markdown(report: LintReport) -> str:
    """A summary line and one table of findings per file, for a PR comment or step summary."""
    out = ["### patcher lint", "", *(f"{line}  " for line in context(report)), summary(report), ""]
    by_file: dict[str, list[Finding]] = {}
    for f in report.findings:
        by_file.setdefault(f.path, []).append(f)
    for path, findings in by_file.items():
        out += [f"#### `{path}`", "", "| line | severity | code | finding |", "|---|---|---|---|"]
        for f in findings:
            out.append(
                f"| {f.line} | {_ICON[f.severity]} {f.severity} | `{f.code}` | {_cell(f.message)} |"
            )
        out.append("")
    if not report.findings:
        out.append("No findings. ✅")
    return "\n".join(out).rstrip() + "\n"


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def rules_table() -> str:
    """The markdown table of every rule (``patcher lint --list-rules``, docs/lint.md)."""
    from patcher.sql.risks.codes import ALL_RULE_INFO

    rows = [
        "| code | severity | what | why, and what to do instead | a dry run also tells |",
        "|---|---|---|---|---|",
    ]
    for rule in ALL_RULE_INFO.values():
        rows.append(
            f"| `{rule.code}` | {rule.severity} | {_cell(rule.summary)} | {_cell(rule.help)} "
            f"| {_cell(rule.database)} |"
        )
    return "\n".join(rows)


RENDERERS: Final[dict[str, Callable[[LintReport], str]]] = {
    "text": text,
    "json": as_json,
    "github": github,
    "markdown": markdown,
}
