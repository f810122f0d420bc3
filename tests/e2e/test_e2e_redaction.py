"""Error DETAIL (row values) stays out of the logs unless POWERTOOLS_LOG_LEVEL=DEBUG.

PostgreSQL's DETAIL for a unique violation quotes the row (``Key (email)=(...) already
exists``); the result keeps it for the caller, the "run finished" log line does not.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patcher.aws import handler
from patcher.dev.devrun import LambdaContext

ROW_VALUE = "ann.private@example.com"


@pytest.fixture
def log_lines(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    buffer = io.StringIO()
    monkeypatch.setattr(handler.logger.registered_handler, "stream", buffer)
    return buffer


@pytest.fixture
def failing_run(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    (tmp_path / "0001_people.up.sql").write_text(
        "CREATE TABLE people (email text PRIMARY KEY);\n"
        f"INSERT INTO people VALUES ('{ROW_VALUE}');\n"
        f"INSERT INTO people VALUES ('{ROW_VALUE}');\n"
    )
    monkeypatch.setenv("PATCHER_SOURCE", str(tmp_path))
    monkeypatch.setenv("PATCHER_DATABASE_URL", pg_dsn)
    monkeypatch.delenv("PATCHER_DB_SECRET_ARN", raising=False)
    monkeypatch.delenv("PATCHER_TARGETS", raising=False)
    level = handler.logger.log_level
    yield {"action": "migrate"}
    handler.logger.setLevel(level)


def _run_finished(buffer: io.StringIO) -> dict[str, Any]:
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
    (line,) = [line for line in lines if line.get("message") == "run finished"]
    return line


def test_detail_is_kept_out_of_the_summary_log_line(
    failing_run: dict[str, str], log_lines: io.StringIO
) -> None:
    handler.logger.setLevel(logging.INFO)
    result = handler.lambda_handler(failing_run, LambdaContext())
    assert result["status"] == "failed"
    error = result["error"]
    assert error["type"] == "MigrationFailed" and error["sqlstate"] == "23505"
    assert ROW_VALUE in error["detail"] and ROW_VALUE in error["message"]  # the caller sees it
    logs = log_lines.getvalue()
    assert ROW_VALUE not in logs
    logged = _run_finished(log_lines)["error"]
    assert logged["type"] == "MigrationFailed"
    assert "duplicate key value violates unique constraint" in logged["message"]
    assert "0001_people.up.sql line 3" in logged["message"]  # still says where
    assert "detail" not in logged and "DEBUG" in logged["detail_hidden"]


def test_detail_is_logged_at_debug(failing_run: dict[str, str], log_lines: io.StringIO) -> None:
    handler.logger.setLevel(logging.DEBUG)
    result = handler.lambda_handler(failing_run, LambdaContext())
    assert result["status"] == "failed"
    logged = _run_finished(log_lines)["error"]
    assert ROW_VALUE in logged["message"] and ROW_VALUE in logged["detail"]


def test_errors_without_detail_are_logged_as_they_are(
    failing_run: dict[str, str], log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler.logger.setLevel(logging.INFO)
    monkeypatch.setenv("PATCHER_LOCK_TIMEOUT", "soon")
    result = handler.lambda_handler(failing_run, LambdaContext())
    assert result["error"]["type"] == "ConfigError"
    assert _run_finished(log_lines)["error"] == result["error"]
