"""The result of a run: typed for the adapters (``RunResult``), rendered to the SPEC result object
(one JSON-ready dict, never larger than the Lambda limit) only at the edge, by ``to_dict``.

The commands return a ``RunResult``; an adapter decides on its fields (``isinstance(result.error,
DatabaseUnavailable)``, ``result.ok``), never on the rendered JSON's strings.

Sizes are counted as ``json.dumps`` writes by default (ASCII escapes, ``", "`` and ``": "``):
never less than the UTF-8 encoding with ``ensure_ascii=False`` or compact separators, so the
bound holds whichever way the Lambda runtime serializes the result. A CJK character counts 6
bytes, an emoji 12. A result over the limit is cut in stages until it fits: every string over a
common cap keeps its head and a marker (SQL previews, statements, messages, warnings), then long
lists of strings keep their first items and a marker string, then long lists of objects keep
their first items and get a ``<key>_truncated`` count; as a last resort only the status and
the error remain. A cut result carries ``"truncated": true`` and says so in ``warnings[0]``.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable
from itertools import accumulate
from json.encoder import encode_basestring_ascii as _escaped  # what json.dumps writes for a str
from typing import Any

from patcher.core.errors import PatcherError
from patcher.core.models import Migration
from patcher.core.record import record
from patcher.engine.outcome import Outcome, ResultEntry

NOT_OK = frozenset({"failed", "locked", "invalid", "drifted"})  # the statuses whose ``ok`` is false
RESULT_LIMIT_BYTES = 5_500_000  # Lambda's synchronous response limit is 6 MB; keep headroom
UNKNOWN_KEY = "current_version_unknown_reason"  # set when the history was never read
MARKER = "[truncated by StackFlowPatcher"
_SQL_MARKER = "\n-- " + MARKER + ": {n} more characters; read {name} for the rest]"
_TEXT_MARKER = "… " + MARKER + ": {n} more characters]"
_FLOOR = 300  # no string is cut below this many bytes (marker included)
_FLAG_SIZE = len(', "sql_truncated": true')
_CHUNK = 1 << 16  # strings are measured in slices: a 50 MB preview is never escaped whole
# How many items a list of objects (migrations, pending, risks) keeps, stage by stage.
_STAGES: tuple[int | None, ...] = (None, 1_000, 100, 10)


@record
class RunResult:
    """What one request came to, typed: the status, the ``PatcherError`` that ended it (or
    None), the entries; ``to_dict`` renders the SPEC result (section 4) for the edge."""

    action: str
    dry_run: bool
    status: str
    error: PatcherError | None
    current_version: int | None
    entries: tuple[ResultEntry, ...]
    pending: tuple[Migration, ...]
    warnings: tuple[str, ...]
    request_id: str
    duration_ms: int
    differences: tuple[dict[str, Any], ...] | None = None  # drift only (SPEC 13)
    version_unknown: str | None = None  # why current_version is unknown (issue 28 item 4)

    @classmethod
    def of(
        cls, outcome: Outcome, *, action: str, dry_run: bool, request_id: str, duration_ms: int
    ) -> RunResult:
        """The result of a run that ended with ``outcome``."""
        return cls(
            action=action,
            dry_run=dry_run,
            status=outcome.status,
            error=outcome.error,
            current_version=outcome.current_version,
            entries=tuple(outcome.entries),
            pending=tuple(outcome.pending),
            warnings=tuple(outcome.warnings),
            request_id=request_id,
            duration_ms=duration_ms,
            version_unknown=outcome.version_unknown(),
        )

    @property
    def ok(self) -> bool:
        return self.status not in NOT_OK

    def to_dict(self, limit: int = RESULT_LIMIT_BYTES) -> dict[str, Any]:
        """The SPEC result object, cut to fit ``limit`` bytes (a Lambda response's 6 MB)."""
        result: dict[str, Any] = {
            "ok": self.ok,
            "action": self.action,
            "dry_run": self.dry_run,
            "status": self.status,
            "current_version": self.current_version,
            "migrations": [entry.to_dict() for entry in self.entries],
            "pending": [{"version": m.version, "description": m.description} for m in self.pending],
            "warnings": list(self.warnings),
            "error": self.error.to_dict() if self.error else None,
            "request_id": self.request_id,
            "duration_ms": self.duration_ms,
        }
        if self.differences is not None:
            result["differences"] = list(self.differences)
        if self.version_unknown is not None:  # never read: no current version, no pending
            result = {
                **{k: v for k, v in result.items() if k != "pending"},
                UNKNOWN_KEY: self.version_unknown,
            }
        return fit(result, limit)


def build_result(
    *,
    action: str,
    dry_run: bool,
    outcome: Outcome,
    request_id: str,
    duration_ms: int,
    limit: int = RESULT_LIMIT_BYTES,
) -> dict[str, Any]:
    """Shape an Outcome into the SPEC result, cut to fit ``limit`` bytes (``RunResult.to_dict``)."""
    result = RunResult.of(
        outcome, action=action, dry_run=dry_run, request_id=request_id, duration_ms=duration_ms
    )
    return result.to_dict(limit)


def holds_sql(result: dict[str, Any]) -> bool:
    """Whether a result may hold scripts' SQL (megabytes of it): only a dry run's does. Any
    other is small by construction (names, states, error text), so it is measured and printed
    by ``json.dumps`` itself, in C; a preview only slice by slice, never escaped whole."""
    return result.get("dry_run") is not False


def fit(result: dict[str, Any], limit: int) -> dict[str, Any]:
    """The result itself when it fits ``limit`` bytes, else a copy cut (with markers) to fit."""
    size = json_size(result) if holds_sql(result) else len(json.dumps(result, default=str))
    if size <= limit:
        return result
    note = (
        f"the result ({size:,} bytes as JSON) was cut to fit the {limit:,}-byte limit of a "
        f"Lambda response: text ending in '{MARKER}…]' and lists with a '<key>_truncated' "
        "count are incomplete; read the migration files for the full SQL"
    )
    base = {**result, "truncated": True, "warnings": [note, *(result.get("warnings") or [])]}
    for keep in _STAGES:
        cut: dict[str, Any] = _cap_strings(_cap_lists(base, keep), limit)
        if json_size(cut) <= limit:
            return cut
    return _bare(base, limit)


def _bare(result: dict[str, Any], limit: int) -> dict[str, Any]:
    """The last resort: the status, the error's scalars, and what was dropped."""
    error = result.get("error")
    if isinstance(error, dict):
        error = {k: v for k, v in error.items() if not isinstance(v, list | dict)}
    bare = {
        **{k: v for k, v in result.items() if not isinstance(v, list | dict)},
        "migrations": [],
        "migrations_truncated": len(result.get("migrations") or []),
        "pending": [],
        "pending_truncated": len(result.get("pending") or []),
        "warnings": (result.get("warnings") or [])[:1],
        "error": error,
    }
    cut: dict[str, Any] = _cap_strings(bare, min(limit, 100_000))
    return cut


def _cap_lists(value: Any, keep: int | None) -> Any:
    """A copy in which every list of objects longer than ``keep`` keeps its first items and
    gets a ``<key>_truncated`` count beside it (lists of strings are cut as text is)."""
    if keep is None:
        return value
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            item = _cap_lists(item, keep)
            if isinstance(item, list) and len(item) > keep and not _texts(item):
                out[f"{key}_truncated"] = len(item) - keep
                item = item[:keep]
            out[key] = item
        return out
    if isinstance(value, list):
        return [_cap_lists(item, keep) for item in value]
    return value


def _texts(value: list[Any]) -> bool:
    """A non-empty list of strings only: a statement list, warnings, problems."""
    return bool(value) and set(map(type, value)) == {str}


def _cap_strings(value: Any, limit: int) -> Any:
    """A copy in which every string, and every list of strings, over one common cap is cut to
    it, with a marker.

    The cap is the largest that lets the whole fit ``limit`` (water-filling: short ones stay
    whole, the long ones share what is left equally), but never below ``_FLOOR``. A list of
    strings counts as one (a 4,000-statement list does not squeeze the SQL preview beside it
    to 4,000ths) and keeps its first items whole."""
    sizes: list[int] = []
    total = json_size(value, sizes)
    if not sizes:
        return value
    others = total - sum(sizes) + _FLAG_SIZE * _previews(value)
    cap = max(_FLOOR, _water_level(sorted(sizes), limit - others))
    return _cut_strings(value, cap, None, None)


def _previews(value: Any) -> int:
    """How many objects carry an ``sql`` preview (each may gain a ``sql_truncated`` flag)."""
    if isinstance(value, dict):
        return isinstance(value.get("sql"), str) + sum(_previews(v) for v in value.values())
    if isinstance(value, list):
        return sum(_previews(v) for v in value if isinstance(v, dict | list))
    return 0


def _water_level(ascending: list[int], room: int) -> int:
    """The largest cap c with sum(min(s, c) for s in ascending) <= room."""
    prefix = [0, *accumulate(ascending)]
    if prefix[-1] <= room:
        return ascending[-1]
    low, high = 0, ascending[-1]
    while low < high:
        mid = (low + high + 1) // 2
        below = bisect.bisect_right(ascending, mid)
        if prefix[below] + mid * (len(ascending) - below) <= room:
            low = mid
        else:
            high = mid - 1
    return low


def _cut_strings(value: Any, cap: int, key: str | None, parent: dict[str, Any] | None) -> Any:
    if isinstance(value, str):
        if string_size(value) <= cap:
            return value
        if key == "sql" and parent is not None and "version" in parent:
            name = f"version {parent['version']} ({parent.get('direction')})"
            return cut_text(value, cap, lambda n: _SQL_MARKER.format(n=n, name=name))
        return cut_text(value, cap, lambda n: _TEXT_MARKER.format(n=n))
    if isinstance(value, dict):
        out = {k: _cut_strings(v, cap, k, value) for k, v in value.items()}
        if isinstance(value.get("sql"), str) and out["sql"] is not value["sql"]:
            out["sql_truncated"] = True
        return out
    if isinstance(value, list):
        if _texts(value):
            return _cut_list(value, cap, key) if json_size(value) > cap else value
        return [_cut_strings(item, cap, key, parent) for item in value]
    return value


def _cut_list(items: list[str], cap: int, key: str | None) -> list[str]:
    """The first items of a list of strings that fit ``cap`` bytes with a marker item."""

    def marker(dropped: int) -> str:
        return f"{MARKER}: {dropped} more {key or 'items'}]"

    room = cap - 2 - string_size(marker(len(items))) - 2
    kept: list[str] = []
    used = 0
    for item in items:
        size = string_size(item) + 2 * bool(kept)
        if used + size > room:
            rest = room - used - 2 * bool(kept)
            if rest >= _FLOOR or not kept:  # room for the head of this one
                kept.append(cut_text(item, rest, lambda n: _TEXT_MARKER.format(n=n)))
            break
        kept.append(item)
        used += size
    dropped = len(items) - len(kept)
    return [*kept, marker(dropped)] if dropped else kept


def cut_text(text: str, budget: int, marker: Callable[[int], str]) -> str:
    """The longest head of ``text`` that, with ``marker(characters dropped)``, encodes in
    ``budget`` bytes (JSON string, quotes included)."""
    room = budget - string_size(marker(len(text)))  # the marker's quotes pay for the text's
    keep, used = 0, 0
    for start in range(0, len(text), _CHUNK):
        piece = string_size(text[start : start + _CHUNK]) - 2
        if used + piece > room:
            keep = start + _fitting_head(text[start : start + _CHUNK], room - used)
            break
        used += piece
    else:
        keep = len(text)
    return text[:keep] + marker(len(text) - keep)


def _fitting_head(piece: str, room: int) -> int:
    low, high = 0, len(piece)
    while low < high:
        mid = (low + high + 1) // 2
        if string_size(piece[:mid]) - 2 <= room:
            low = mid
        else:
            high = mid - 1
    return low


def string_size(text: str) -> int:
    """Bytes of ``json.dumps(text)``, measured slice by slice."""
    if len(text) <= _CHUNK:
        return len(_escaped(text))
    return 2 + sum(len(_escaped(text[i : i + _CHUNK])) - 2 for i in range(0, len(text), _CHUNK))


def json_size(value: Any, strings: list[int] | None = None) -> int:
    """Bytes of ``json.dumps(value, default=str)``, without building it. The size of every
    string value (not key) and every list of strings is appended to ``strings`` when given."""
    if isinstance(value, str):
        size = string_size(value)
        if strings is not None:
            strings.append(size)
        return size
    if isinstance(value, dict):
        items = sum(string_size(str(k)) + 2 + json_size(v, strings) for k, v in value.items())
        return 2 + items + 2 * max(0, len(value) - 1)
    if isinstance(value, list | tuple):
        commas = 2 * max(0, len(value) - 1)
        if not (isinstance(value, list) and _texts(value)):
            return 2 + sum(json_size(v, strings) for v in value) + commas
        if max(map(len, value)) <= _CHUNK:
            size = 2 + sum(map(len, map(_escaped, value))) + commas  # statements: in C
        else:
            size = 2 + sum(map(string_size, value)) + commas
        if strings is not None:
            strings.append(size)
        return size
    return len(json.dumps(value, default=str))
