"""A migrate/rollback/status result as GitHub-flavoured markdown, for ``$GITHUB_STEP_SUMMARY``,
a pull-request comment or the on-call channel (``--format markdown``; SPEC section 6).

A headline and the migrations table, then for a dry run one section per migration: its risks,
what ``verify`` measured (duration, locks, rewrites) and, for a rollback, the data at risk with
the summary line on top; the SQL folded in ``<details>``. Bounded: a job summary takes at most
1 MiB, so each SQL preview is cut to ``SQL_CHARS`` and the whole to ``MAX_CHARS``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Final

from patcher.cli.drift_report import markdown_lines as drift_markdown
from patcher.cli.report import PREVIEWED, current_text, tx_text
from patcher.cli.report_at_risk import HEADER, has_data_at_risk, rows_of, summary, when

SQL_CHARS: Final = 4000
MAX_CHARS: Final = 900_000
_CUT = "\n\n_(cut to fit a job summary: the JSON result has everything)_\n"


def render_markdown(result: dict[str, Any]) -> str:
    lines = [_headline(result), ""]
    if has_data_at_risk(result):
        lines += [f"**{cell(summary(result))}**", ""]
    lines += _migrations(result.get("migrations") or [])
    lines += drift_markdown(result)  # drift only
    if result.get("dry_run"):
        for entry in result.get("migrations") or []:
            lines += _section(entry)
    lines += _footer(result)
    text = "\n".join(lines).rstrip() + "\n"
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - len(_CUT)] + _CUT


def cell(text: object) -> str:
    """Text safe in a table cell or a bold line: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def _headline(result: dict[str, Any]) -> str:
    mode = " (dry run)" if result.get("dry_run") else ""
    icon = "✅" if result.get("ok") else "❌"
    return (
        f"### {icon} patcher {result.get('action')}{mode}: `{result.get('status')}` · current "
        f"version {cell(current_text(result))} · "
        f"{result.get('duration_ms')} ms · request `{result.get('request_id')}`"
    )


def _migrations(entries: list[dict[str, Any]]) -> list[str]:
    if not entries:
        return []
    changes = any("change" in m for m in entries)
    header = ("version", "description", "direction", "state", "transactional", "ms")
    rows = [
        (
            str(m["version"]), m["description"], m["direction"], m["state"], tx_text(m),
            str(m.get("duration_ms", "")), *[m.get("change") or ""] * changes,
        )
        for m in entries
    ]  # fmt: skip
    return table((*header, *["change"] * changes), rows)


def _section(entry: dict[str, Any]) -> list[str]:
    if not PREVIEWED.intersection(entry):
        return []  # a repair's entry: its change is in the table
    kind = "transactional" if entry.get("transactional", True) else "no-transaction"
    lines = [
        f"#### {entry['version']} {cell(entry['description'])} ({entry['direction']}, {kind})",
        "",
    ]
    if "data_at_risk" in entry:
        lines += [f"Data at risk (version applied {when(entry.get('applied_at'))}):", ""]
        header = [h.lower() for h in HEADER]
        lines += table(header, rows_of(entry)) if entry["data_at_risk"] else ["none", ""]
    if "backfill" in entry:
        from patcher.cli.report import backfill_line

        lines += [cell(backfill_line(entry["backfill"], "verified" in entry)), ""]
    if "verified" in entry:
        lines += _verification(entry)
    risks = entry.get("risks") or []
    if risks:
        rows = [(r["code"], r["explanation"], r.get("statement", "")[:200]) for r in risks]
        lines += table(("risk", "why", "statement"), rows)
    if "sql" in entry:
        sql = entry["sql"]
        shown = sql if len(sql) <= SQL_CHARS else sql[:SQL_CHARS] + "\n-- … (cut)"
        fence = "````" if "```" in shown else "```"
        lines += ["<details><summary>SQL</summary>", "", fence + "sql", shown.rstrip(), fence]
        lines += ["", "</details>", ""]
    return lines


def _verification(entry: dict[str, Any]) -> list[str]:
    if not entry["verified"]:
        note = entry.get("verify_note", "failed, see the error below")
        if "lock_conflict" in entry:
            note = f"could not get a lock at line {entry['lock_conflict'].get('line')}"
        if entry.get("state") == "failed" and "lock_conflict" not in entry:  # it ran and failed
            return [f"Verify: **failed** {cell(note)}", ""]
        return [f"Verify: **not run**: {cell(note)}", ""]
    modes: dict[str, list[str]] = defaultdict(list)
    for lock in entry.get("locks") or []:
        modes[lock["relation"]].append(lock["mode"])
    locks = "; ".join(f"`{rel}` {', '.join(m)}" for rel, m in modes.items()) or "none"
    rewrites = ", ".join(f"`{r}`" for r in entry.get("rewrites") or []) or "none"
    return [
        f"Verify: ran in {entry.get('duration_ms', 0)} ms and rolled back · locks on existing "
        f"tables: {locks} · rewrites: {rewrites}",
        "",
    ]


def _footer(result: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if result.get("progress"):
        from patcher.cli.report import progress_line

        lines += [cell(progress_line(result["progress"])), ""]
    pending = result.get("pending") or []
    if pending:
        names = ", ".join(f"{p['version']} {p['description']}" for p in pending)
        lines += [f"Pending: {cell(names)}", ""]
    lines += [f"> ⚠️ {cell(w)}" for w in result.get("warnings") or []]
    error = result.get("error")
    if error:
        lines += ["", f"**Error: {error.get('type')}**: {cell(error.get('message', ''))}"]
    return lines
