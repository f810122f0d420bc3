"""The CLI's streamed output is exactly what ``json.dumps`` / ``print`` would write, in slices."""

from __future__ import annotations

import datetime
import io
import json
from typing import Any

import pytest

from patcher.cli.output import SLICE, write_json, write_lines
from patcher.cli.report import render, render_lines

LONG_SQL = ("INSERT INTO t VALUES ('é\"\\\t', '🚀');\n" * (3 * SLICE // 30)) + "-- end\n\n  \n"
VALUES: list[Any] = [
    {},
    [],
    {"a": [], "b": {}, "c": [{}], "d": [[1, 2], {"x": None}]},
    {"ok": True, "n": -3, "f": 1.5, "none": None, "s": 'tab\tquote"back\\slash\u2028'},
    {"sql": LONG_SQL, "list": [LONG_SQL[: SLICE + 7], "short"]},
    {"when": datetime.datetime(2026, 12, 2, 1, 2, 3), "tuple": (1, "two")},
    {"nested": {1: "int key", 2: [3]}},
    "🚀" * (SLICE + 1),
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_write_json_matches_json_dumps(value: Any) -> None:
    out = io.StringIO()
    write_json(value, out)
    assert out.getvalue() == json.dumps(value, indent=2, default=str) + "\n"


def test_write_json_writes_a_long_string_in_slices() -> None:
    class Recording(io.StringIO):
        largest = 0

        def write(self, text: str) -> int:
            self.largest = max(self.largest, len(text))
            return super().write(text)

    out = Recording()
    write_json({"sql": "x" * (20 * SLICE)}, out)
    assert out.largest <= 2 * SLICE
    assert json.loads(out.getvalue())["sql"] == "x" * (20 * SLICE)


@pytest.mark.parametrize(
    "lines", [[], [""], ["one"], ["a", "", "b"], ["x" * (3 * SLICE + 5), "tail"]]
)
def test_write_lines_matches_print(lines: list[str]) -> None:
    out = io.StringIO()
    write_lines(iter(lines), out)
    assert out.getvalue() == "\n".join(lines) + "\n"


def _dry_run_result(sql: str) -> dict[str, Any]:
    entry = {"version": 7, "description": "big", "direction": "up", "state": "planned",
             "transactional": True, "sql": sql, "risks": []}  # fmt: skip
    return {"action": "migrate", "dry_run": True, "status": "planned", "current_version": None,
            "duration_ms": 3, "request_id": "r", "migrations": [entry], "pending": [],
            "warnings": [], "error": None}  # fmt: skip


def test_render_lines_show_the_sql_without_trailing_blank_lines() -> None:
    sql = "CREATE TABLE a (id int);\r\n\nINSERT INTO a VALUES (1);\rSELECT 1;\n\n   \n"
    lines = list(render_lines(_dry_run_result(sql)))
    shown = lines[lines.index("sql:") + 1 : lines.index("pending: none")]
    assert shown == ["    CREATE TABLE a (id int);", "    ", "    INSERT INTO a VALUES (1);",
                     "    SELECT 1;"]  # fmt: skip
    assert render(_dry_run_result(sql)) == "\n".join(lines)


def test_render_lines_of_a_long_preview_keep_every_line() -> None:
    lines = list(render_lines(_dry_run_result(LONG_SQL)))
    shown = lines[lines.index("sql:") + 1 : lines.index("pending: none")]
    assert shown == ["    " + line for line in LONG_SQL.rstrip().splitlines()]
