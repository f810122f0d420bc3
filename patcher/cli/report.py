"""A result as a person reads it: a headline, a table, then each preview, pending, warnings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from patcher.app.result import UNKNOWN_KEY
from patcher.cli.drift_report import text_lines as drift_lines
from patcher.cli.report_at_risk import HEADER, has_data_at_risk, rows_of, summary

PREVIEWED = frozenset({"sql", "risks", "verified", "data_at_risk"})  # what a preview shows


def render(result: dict[str, Any]) -> str:
    return "\n".join(render_lines(result))


def render_lines(result: dict[str, Any]) -> Iterator[str]:
    """The lines of ``render``, made one at a time: a 50 MB SQL preview is never copied whole."""
    mode = " (dry run)" if result["dry_run"] else ""
    yield (
        f"{result['action']}{mode}: {result['status']} - current version "
        f"{current_text(result)} - {result['duration_ms']} ms - request {result['request_id']}"
    )
    if has_data_at_risk(result):
        yield f"data at risk: {summary(result)}"
    yield from _table(result["migrations"])
    yield from drift_lines(result)  # drift only
    if result["dry_run"]:
        for entry in result["migrations"]:
            yield from _preview(entry)
    if result.get("progress"):
        yield progress_line(result["progress"])
    if "pending" in result:  # absent when the history was never read: unknown, not none
        pending = result["pending"]
        yield "pending: " + (
            ", ".join(f"{p['version']} {p['description']}" for p in pending) or "none"
        )
    yield from (f"warning: {w}" for w in result["warnings"])
    if result["error"]:
        yield f"error: {result['error']['type']}: {result['error']['message']}"


def current_text(result: dict[str, Any]) -> str:
    """The current version, ``none`` (no version applied), or ``unknown`` and why."""
    current = result.get("current_version")
    if current is not None:
        return str(current)
    reason = result.get(UNKNOWN_KEY)
    return f"unknown ({reason})" if reason else "none"


def tx_text(entry: dict[str, Any]) -> str:
    """An entry's transactional mode: yes, no, or ? when the file could not be read."""
    mode = entry.get("transactional")
    return "?" if mode is None else "yes" if mode else "no"


def _table(entries: list[dict[str, Any]]) -> list[str]:
    if not entries:
        return []
    changes = any("change" in m for m in entries)
    rows = [("VERSION", "DESCRIPTION", "DIR", "STATE", "TX", "MS", *["CHANGE"] * changes)]
    for m in entries:
        rows.append((
            "R" if m["version"] is None else str(m["version"]), m["description"],
            m["direction"], m["state"], tx_text(m), str(m.get("duration_ms", "")),
            *[m.get("change") or ""] * changes,
        ))  # fmt: skip
    return _aligned(rows)


def _preview(entry: dict[str, Any]) -> Iterator[str]:
    """One migration's preview: verification findings, risks, then its SQL (nothing for an
    entry that has none: a repair's, whose change is in the table)."""
    if not PREVIEWED.intersection(entry):
        return
    kind = "transactional" if entry.get("transactional", True) else "no-transaction"
    lines = ["", f"== {entry['version']} {entry['description']} ({entry['direction']}, {kind}) =="]
    if "data_at_risk" in entry:
        lines += _at_risk(entry)
    if "backfill" in entry:
        lines.append(backfill_line(entry["backfill"], "verified" in entry))
    if "verified" in entry:
        lines.append(_verification(entry))
    for risk in entry.get("risks", []):
        statement = " ".join(risk["statement"].split())
        lines.append(f"risk {risk['code']}: {risk['explanation']}")
        lines.append(f"    in: {statement[:160]}")
    yield from lines
    if "sql" in entry:
        yield "sql:"
        yield from (f"    {line}" for line in _split_lines(entry["sql"]))


def _split_lines(text: str) -> Iterator[str]:
    """The lines of ``text`` (ended by \\n, \\r\\n or \\r) without its trailing blank lines, one
    at a time and without copying the text: blank lines wait until a line with content follows."""
    blank, start = 0, 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        for line in text[start:end].removesuffix("\r").split("\r"):
            if not line.strip():
                blank += 1
                continue
            yield from [""] * blank
            blank = 0
            yield line
        start = end + 1


def _at_risk(entry: dict[str, Any]) -> list[str]:
    """What this down script would destroy, as a table (``none`` when nothing)."""
    rows = rows_of(entry)
    if not rows:
        return ["data at risk: none"]
    return ["data at risk:", *("    " + line for line in _aligned([HEADER, *rows]))]


def _aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def progress_line(p: dict[str, Any]) -> str:
    """A backfill's ``progress``: ``backfill progress: 1,000 of about 1,000 rows in 4 ranges``."""
    of = f" of about {p['rows_estimated']:,}" if p.get("rows_estimated") else ""
    return f"backfill progress: {p['rows_done']:,}{of} rows in {p['ranges_done']} ranges"


def backfill_line(info: dict[str, Any], verified: bool) -> str:
    """A dry run's backfill: the key, how many ranges, and where it resumes."""
    if "key" not in info:
        return f"backfill over {info['table']}: {info.get('note') or info.get('refused')}"
    rows = info.get("rows_estimated")
    about = f"about {rows:,} rows, {info['ranges_estimated']} ranges" if rows else "size unknown"
    text = (
        f"backfill over {info['table']} by key ({', '.join(info['key'])}): {about} of "
        f"{info['batch_rows']:,} rows"
    )
    if "resumes" in info:
        text += f"; resumes after {info['resumes']['ranges_done']} ranges done"
    return text + ("; verify ran the next range:" if verified else "")


def _verification(entry: dict[str, Any]) -> str:
    if not entry["verified"]:
        if "lock_conflict" in entry:
            return (
                f"verify: could not get a lock at line {entry['lock_conflict']['line']} "
                "(another session holds a conflicting lock right now)"
            )
        if entry.get("state") == "failed":  # it ran, and PostgreSQL refused it
            return f"verify: failed {entry.get('verify_note', '- see error')}"
        return f"verify: not run - {entry.get('verify_note', 'failed, see error')}"
    modes: dict[str, list[str]] = defaultdict(list)
    for lock in entry.get("locks", []):
        modes[lock["relation"]].append(lock["mode"])
    locks = "; ".join(f"{rel} {', '.join(m)}" for rel, m in modes.items()) or "none"
    rewrites = ", ".join(entry.get("rewrites", [])) or "none"
    return (
        f"verify: ran in {entry.get('duration_ms', 0)} ms and rolled back; locks on existing "
        f"tables: {locks}; rewrites: {rewrites}"
    )
