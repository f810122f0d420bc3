"""The adapters decide on a typed result, never on error names as strings (issue 27, item 3).

``patcher/aws`` and ``patcher/cli`` get a ``RunResult`` from ``patcher.app.commands`` and test
``isinstance(result.error, DatabaseUnavailable)``; a comparison against a PatcherError's name
(``error["type"] == "DatabaseUnavailable"``, ``... == InvalidRequest.__name__``, ``in (...)`` or
a ``case "LockTimeout":``) would break silently when an error class is renamed or subclassed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import patcher
from patcher.app.result import RunResult
from patcher.core import errors
from patcher.core.errors import DatabaseUnavailable, InvalidRequest
from patcher.engine.outcome import Outcome

ROOT = Path(patcher.__file__).parent
ADAPTERS = ("aws", "cli")


def _error_names() -> set[str]:
    names, pending = set(), [errors.PatcherError]
    while pending:
        cls = pending.pop()
        names.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return names


ERROR_NAMES = _error_names()


def _names_an_error(node: ast.expr) -> bool:
    """A string naming an error class, ``<ErrorClass>.__name__``, or a collection of them."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and node.value in ERROR_NAMES
    if isinstance(node, ast.Attribute) and node.attr == "__name__":
        return isinstance(node.value, ast.Name) and node.value.id in ERROR_NAMES
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_names_an_error(item) for item in node.elts)
    return False


def string_matches(tree: ast.AST) -> Iterator[int]:
    """Lines comparing something against an error's name."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            if any(_names_an_error(side) for side in (node.left, *node.comparators)):
                yield node.lineno
        elif isinstance(node, ast.MatchValue) and _names_an_error(node.value):
            yield node.value.lineno


def test_no_adapter_compares_error_types_as_strings() -> None:
    found = [
        f"{path.relative_to(ROOT.parent)}:{line}"
        for package in ADAPTERS
        for path in sorted((ROOT / package).rglob("*.py"))
        for line in string_matches(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert not found, "test isinstance(result.error, SomeError) instead of its name: " + str(found)


def test_the_check_finds_each_form() -> None:
    forms = [
        'ok = (result["error"] or {}).get("type") == "DatabaseUnavailable"',
        'ok = error.get("type") == InvalidRequest.__name__',
        'ok = kind in ("LockTimeout", "other")',
        'match kind:\n    case "ChecksumMismatch":\n        pass',
    ]
    assert [len(list(string_matches(ast.parse(f)))) for f in forms] == [1, 1, 1, 1]
    assert not list(string_matches(ast.parse('ok = err["type"] == "extra_forbidden"')))


def _result(error: errors.PatcherError | None, status: str) -> RunResult:
    outcome = Outcome(status=status, error=error)
    return RunResult.of(outcome, action="migrate", dry_run=False, request_id="r", duration_ms=1)


def test_a_run_result_is_typed_and_renders_the_spec_result() -> None:
    down = _result(DatabaseUnavailable("cannot connect"), "failed")
    assert (down.ok, down.status, isinstance(down.error, DatabaseUnavailable)) == (
        False,
        "failed",
        True,
    )
    shown = down.to_dict()
    assert list(shown) == [
        "ok",
        "action",
        "dry_run",
        "status",
        "current_version",
        "migrations",
        "warnings",
        "error",
        "request_id",
        "duration_ms",
        "current_version_unknown_reason",  # it never read the history: no pending (issue 28)
    ]
    assert shown["error"]["type"] == "DatabaseUnavailable"
    assert shown["current_version_unknown_reason"] == (
        "the run stopped before it read the history: DatabaseUnavailable"
    )
    read = Outcome(status="up_to_date", history_read=True, current_version=3)
    known = RunResult.of(read, action="status", dry_run=False, request_id="r", duration_ms=1)
    assert (
        known.to_dict()["pending"] == [] and "current_version_unknown_reason" not in known.to_dict()
    )
    assert _result(None, "up_to_date").to_dict()["ok"] is True


def test_the_cli_exit_code_follows_the_error_class() -> None:
    from patcher.cli.main import exit_code

    class Narrower(InvalidRequest):
        """A refinement: still a refused request, whatever its name."""

    assert exit_code(_result(None, "applied")) == 0
    assert exit_code(_result(InvalidRequest("no"), "invalid")) == 2
    assert exit_code(_result(Narrower("no"), "invalid")) == 2
    assert exit_code(_result(DatabaseUnavailable("down"), "failed")) == 1
