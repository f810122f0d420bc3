"""A result as a person reads it: a headline, a table, then each preview, pending, warnings."""

from __future__ import annotations

from collections import defaultdict
from typing import Any


def render(result: dict[str, Any]) -> str:
    mode = " (dry run)" if result["dry_run"] else ""
    current = result["current_version"]
    lines = [
        f"{result['action']}{mode}: {result['status']} - current version "
        f"{current if current is not None else 'none'} - {result['duration_ms']} ms - "
        f"request {result['request_id']}"
    ]
    lines += _table(result["migrations"])
    if result["dry_run"]:
        for entry in result["migrations"]:
            lines += _preview(entry)
    pending = result["pending"]
    lines.append(
        "pending: " + (", ".join(f"{p['version']} {p['description']}" for p in pending) or "none")
    )
    lines += [f"warning: {w}" for w in result["warnings"]]
    if result["error"]:
        lines.append(f"error: {result['error']['type']}: {result['error']['message']}")
    return "\n".join(lines)


def _table(entries: list[dict[str, Any]]) -> list[str]:
    if not entries:
        return []
    rows = [("VERSION", "DESCRIPTION", "DIR", "STATE", "TX", "MS")]
    for m in entries:
        rows.append((
            "R" if m["version"] is None else str(m["version"]), m["description"],
            m["direction"], m["state"],
            "yes" if m.get("transactional", True) else "no", str(m.get("duration_ms", "")),
        ))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _preview(entry: dict[str, Any]) -> list[str]:
    """One migration's preview: verification findings, risks, then its SQL."""
    kind = "transactional" if entry.get("transactional", True) else "no-transaction"
    lines = ["", f"== {entry['version']} {entry['description']} ({entry['direction']}, {kind}) =="]
    if "verified" in entry:
        lines.append(_verification(entry))
    for risk in entry.get("risks", []):
        statement = " ".join(risk["statement"].split())
        lines.append(f"risk {risk['code']}: {risk['explanation']}")
        lines.append(f"    in: {statement[:160]}")
    if "sql" in entry:
        lines.append("sql:")
        lines += [f"    {line}" for line in entry["sql"].rstrip().splitlines()]
    return lines


def _verification(entry: dict[str, Any]) -> str:
    if not entry["verified"]:
        if "lock_conflict" in entry:
            return (
                f"verify: could not get a lock at line {entry['lock_conflict']['line']} "
                "(another session holds a conflicting lock right now)"
            )
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
