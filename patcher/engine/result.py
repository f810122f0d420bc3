"""The SPEC result object: one JSON-ready dict per run, never larger than the Lambda limit."""

from __future__ import annotations

import json
from typing import Any

from patcher.engine.outcome import Outcome

NOT_OK = frozenset({"failed", "locked", "invalid"})  # the statuses whose ``ok`` is false
RESULT_LIMIT_BYTES = 5_500_000  # Lambda's synchronous response limit is 6 MB; keep headroom
_MARKER = "\n-- [truncated by StackFlowPatcher: {n} more characters; read {name} for the rest]"


def build_result(
    *,
    action: str,
    dry_run: bool,
    outcome: Outcome,
    request_id: str,
    duration_ms: int,
    limit: int = RESULT_LIMIT_BYTES,
) -> dict[str, Any]:
    """Shape an Outcome into the SPEC result, truncating SQL previews to fit ``limit``."""
    result: dict[str, Any] = {
        "ok": outcome.status not in NOT_OK,
        "action": action,
        "dry_run": dry_run,
        "status": outcome.status,
        "current_version": outcome.current_version,
        "migrations": [entry.to_dict() for entry in outcome.entries],
        "pending": [{"version": m.version, "description": m.description} for m in outcome.pending],
        "warnings": outcome.warnings,
        "error": outcome.error.to_dict() if outcome.error else None,
        "request_id": request_id,
        "duration_ms": duration_ms,
    }
    return fit(result, limit)


def fit(result: dict[str, Any], limit: int) -> dict[str, Any]:
    """Truncate the longest ``sql`` previews until the JSON encoding fits ``limit`` bytes."""
    size = _size(result)
    if size <= limit:
        return result
    previews = [e for e in result["migrations"] if isinstance(e.get("sql"), str)]
    # Give every preview an equal share of what is left once everything else is counted.
    others = size - sum(_size(e["sql"]) for e in previews)
    share = max(200, (limit - others) // max(1, len(previews)) - 200)
    for entry in previews:
        text: str = entry["sql"]
        if _size(text) > share:
            keep = text[: share // 2]  # JSON escaping can double a character's size
            entry["sql"] = keep + _MARKER.format(n=len(text) - len(keep), name=_name(entry))
            entry["sql_truncated"] = True
    if _size(result) > limit:  # still too big: a huge warning list or many entries
        result["warnings"] = [*result["warnings"][:50], "[further warnings truncated]"]
    return result


def _name(entry: dict[str, Any]) -> str:
    return f"version {entry['version']} ({entry['direction']})"


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str).encode())
