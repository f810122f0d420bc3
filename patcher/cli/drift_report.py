"""A ``drift`` result's differences, as text lines and as a markdown table (SPEC section 13)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

_WIDTH = 100  # a cell of expected/actual longer than this is cut (the JSON result has it all)


def text_lines(result: dict[str, Any]) -> Iterator[str]:
    """One line per difference, then its expected and actual values."""
    differences = result.get("differences")
    if differences is None:
        return
    if not differences:
        yield "no differences: the live schema is as the snapshot has it"
        return
    yield f"{len(differences)} difference{'s' * (len(differences) != 1)}:"
    for d in differences:
        yield f"  {d['change']:<8} {d['kind']:<18} {d['object']}"
        if d["change"] == "changed":
            for key in sorted(d["expected"] or {}):
                yield f"           {key}: {_show(d['expected'][key])} -> {_show(d['actual'][key])}"


def markdown_lines(result: dict[str, Any]) -> list[str]:
    """A table a DBA can read: kind, object, change, expected, actual."""
    differences = result.get("differences")
    if not differences:
        return []
    rows = [
        [d["kind"], f"`{d['object']}`", d["change"], _show(d["expected"]), _show(d["actual"])]
        for d in differences
    ]
    out = ["| kind | object | change | expected | actual |", "|---|---|---|---|---|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _show(value: Any) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = " ".join(text.split())
    return text if len(text) <= _WIDTH else text[: _WIDTH - 1] + "…"
