"""DETAIL out of what a caller stores, the SDK's loggers pinned, PATCHER_RESULTS_KEEP_DETAIL
(issue 28 item 8)."""

from __future__ import annotations

import base64
import json
import logging
import types
from pathlib import Path
from typing import Any

import pytest

from patcher.app.config import load_config
from patcher.aws.stored import STORED_HINT, for_caller, stores_result, without_detail
from patcher.core.errors import ConfigError
from patcher.core.quiet_logs import SDK_LOGGERS, pin_sdk_loggers

ROW = "fred.private@example.com"
DETAIL = f"Key (email)=({ROW}) already exists."
ERROR = {
    "type": "MigrationFailed",
    "message": f"version 3 up failed at 0003_x.up.sql line 2: duplicate key ({DETAIL}).",
    "detail": DETAIL,
    "line": 2,
}
RESULT = {"ok": False, "status": "failed", "error": ERROR}
ASL = Path(__file__).resolve().parents[2] / "statemachine" / "patcher.asl.json"


def _context(custom: Any) -> Any:
    return types.SimpleNamespace(client_context=types.SimpleNamespace(custom=custom))


def test_without_detail_keeps_what_says_where() -> None:
    shown = without_detail(ERROR, "why")
    assert shown is not None and ROW not in json.dumps(shown)
    assert shown["message"] == "version 3 up failed at 0003_x.up.sql line 2: duplicate key."
    assert (shown["line"], shown["detail_hidden"]) == (2, "why")
    assert without_detail({"type": "X", "message": "m"}, "why") == {"type": "X", "message": "m"}
    assert without_detail(None, "why") is None


def test_a_caller_that_stores_gets_no_detail_unless_the_stack_allows_it() -> None:
    stored = _context({"invoked_by": "the state machine", "stores_result": "true"})
    hidden = for_caller(RESULT, stored, keep_detail=False)
    assert ROW not in json.dumps(hidden) and hidden["error"]["detail_hidden"] == STORED_HINT
    assert for_caller(RESULT, stored, keep_detail=True) == RESULT
    for direct in (object(), _context(None), _context({"invoked_by": "patcher invoke by ann"})):
        assert not stores_result(direct)
        assert for_caller(RESULT, direct, keep_detail=False) == RESULT  # the caller is told
    assert RESULT["error"] is ERROR and "detail" in ERROR  # not changed in place


def test_the_state_machine_says_it_stores_the_result() -> None:
    """The Invoke state's ClientContext is what stores_result looks for."""
    text = ASL.read_text()
    start = text.index('"ClientContext": "') + len('"ClientContext": "')
    encoded = text[start : text.index('"', start)]
    custom = json.loads(base64.b64decode(encoded))["custom"]
    assert stores_result(_context(custom)) and custom["invoked_by"] == "the state machine"
    assert text.count('"ClientContext"') == 1


def test_results_keep_detail_setting() -> None:
    base = {"PATCHER_DATABASE_URL": "postgresql://x@localhost/db"}
    assert load_config(base).results_keep_detail is False
    assert load_config(base | {"PATCHER_RESULTS_KEEP_DETAIL": "true"}).results_keep_detail
    with pytest.raises(ConfigError, match="PATCHER_RESULTS_KEEP_DETAIL"):
        load_config(base | {"PATCHER_RESULTS_KEEP_DETAIL": "sometimes"})


def test_the_sdk_loggers_stay_at_warning_under_a_debug_root() -> None:
    root = logging.getLogger()
    level = root.level
    try:
        root.setLevel(logging.DEBUG)
        pin_sdk_loggers()
        for name in (*SDK_LOGGERS, "botocore.parsers", "urllib3.connectionpool"):
            assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
            assert logging.getLogger(name).isEnabledFor(logging.WARNING), name
    finally:
        root.setLevel(level)


def test_the_entry_points_pin_them() -> None:
    """The Lambda handler, the fleet summary and the CLI pin the SDK's loggers."""
    import patcher.aws.fleet_summary
    import patcher.aws.handler
    import patcher.cli.main

    for module in (patcher.aws.handler, patcher.aws.fleet_summary, patcher.cli.main):
        assert "pin_sdk_loggers()" in Path(str(module.__file__)).read_text(), module.__name__
