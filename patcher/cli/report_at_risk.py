"""A rollback preview's ``data_at_risk`` as people read it: one summary line for the whole
rollback, and a table per version (shared by the text and the markdown renderers).

The summary counts rows (tables dropped or truncated, rows deleted) and values (columns
dropped) that would be lost, then rows and values that would be overwritten (UPDATEs, type
changes), and says how much of it was written since the reverted versions were applied:
"all" when every item is an object the versions created, "N of them" when rows could be dated
(their xmin), and says what could not be dated or counted. Estimated figures read "about".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from patcher.core.data_loss import ROW_CHANGES

HEADER = ("RELATION", "COLUMN", "CHANGE", "ROWS", "WRITTEN SINCE APPLIED")


def has_data_at_risk(result: dict[str, Any]) -> bool:
    return any("data_at_risk" in m for m in result.get("migrations") or [])


def when(iso: str | None) -> str:
    """``2026-11-30 14:02 UTC`` from an ISO timestamp (as given when it does not parse)."""
    if not iso:
        return "an unknown time"
    try:
        stamp = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(UTC)
    return stamp.strftime("%Y-%m-%d %H:%M") + " UTC"


def rows_of(entry: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """One table row per item: relation, column, change, count, how much was written since."""
    out = []
    for item in entry.get("data_at_risk") or []:
        count = "unknown" if item["rows"] is None else f"{item['rows']:,}"
        if item.get("estimated"):
            count = f"~{count} (estimated)" if item["rows"] is not None else count
        if item["written_since_applied"]:
            since = "all (created by this version)"
        elif "rows_since_applied" in item:
            since = f"{item['rows_since_applied']:,}"
        else:
            since = "unknown"
        out.append((item["relation"], item["column"] or "-", item["change"], count, since))
    if entry.get("data_at_risk_truncated"):
        n = entry["data_at_risk_truncated"]
        out.append((f"... {n} more", "", "", "", ""))
    return out


class _Tally:
    """Sums of one kind of figure (lost rows, lost values, overwritten ...)."""

    def __init__(self) -> None:
        self.total = 0
        self.since = 0
        self.undated = 0
        self.unknown = 0  # items whose count is not known at all
        self.estimated = False

    def add(self, item: dict[str, Any]) -> None:
        rows = item["rows"]
        if rows is None:
            self.unknown += 1
            return
        self.total += rows
        self.estimated |= bool(item.get("estimated"))
        if item["written_since_applied"]:
            self.since += rows
        elif "rows_since_applied" in item:
            self.since += item["rows_since_applied"]
        else:
            self.undated += rows

    def text(self, noun: str) -> str | None:
        if not self.total and not self.unknown:
            return None
        about = "about " if self.estimated else ""
        words = f"{about}{self.total:,} {noun}" if self.total or not self.unknown else ""
        if self.unknown:
            more = f"an unknown number of {noun} in {self.unknown} more place(s)"
            words = f"{words} and {more}" if words else more
        return words


def summary(result: dict[str, Any]) -> str:
    """The one line: what the whole rollback would destroy, and since when it was written."""
    entries = [m for m in result.get("migrations") or [] if "data_at_risk" in m]
    versions = ", ".join(str(m["version"]) for m in entries)
    lost, values, rows_changed, values_changed = _Tally(), _Tally(), _Tally(), _Tally()
    for entry in entries:
        for item in entry["data_at_risk"]:
            if item["change"] in ROW_CHANGES:
                lost.add(item)
            elif item["change"] == "drop_column":
                values.add(item)
            elif item["column"] is None:
                rows_changed.add(item)
            else:
                values_changed.add(item)
    drops = [t for t in (lost.text("rows"), values.text("values")) if t]
    changes = [t for t in (rows_changed.text("rows"), values_changed.text("values")) if t]
    text = f"rollback of {versions} would "
    text += f"drop {' and '.join(drops)}" if drops else "drop no rows or values"
    if changes:
        text += f", and overwrite {' and '.join(changes)}"
    oldest = min((m.get("applied_at") or "" for m in entries), default="") or None
    several = len(entries) > 1
    return text + _since([lost, values, rows_changed, values_changed], oldest, several)


def _since(tallies: list[_Tally], oldest: str | None, several: bool) -> str:
    """How much was written since: a row dated against its own version is, with several
    versions, written since the oldest too (so "at least")."""
    total = sum(t.total for t in tallies)
    since = sum(t.since for t in tallies)
    undated = sum(t.undated for t in tallies)
    if not total:
        return ""
    stamp = when(oldest)
    if since == total:
        return f", all written since {stamp}"
    if not since and not undated:
        return (
            ", none of it written since its version was applied"
            if several
            else (f", none of it written since {stamp}")
        )
    least = "at least " if several else ""
    text = f", {least}{since:,} of them written since {stamp}" if since else ""
    if undated:
        text += f"{'; ' if text else ', '}{undated:,} could not be dated"
    return text
