"""The squawk rule map (bench/lint_compare/squawk_map.py) against the installed squawk binary.

squawk-cli 2.70.0 is installed under .local/tools/squawk by ``make lint-compare`` (and the test
targets). Its rule names are read from the binary: the names sit in one run of text there
(``require-concurrent-index-creationrequire-concurrent-index-deletion...``), cut here at each
rule-name prefix; each one is then confirmed by ``squawk --exclude=NAME`` (which refuses an
unknown name), and the map must hold exactly those.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from bench.lint_compare.squawk_map import SQUAWK, SQUAWK_DIAGNOSTICS, table
from patcher.sql.risks.codes import RULE_INFO

REPO = Path(__file__).resolve().parents[3]
BINARY = REPO / ".local" / "tools" / "squawk" / "bin" / "squawk"
_PREFIXES = (
    "adding|ban|changing|constraint|disallowed|identifier|prefer|renaming|require|transaction"
    "|unused"
)


def binary_rule_names() -> set[str]:
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: run 'make .local/tools/squawk/bin/squawk'")
    data = BINARY.read_bytes()
    start = data.index(b"require-concurrent-index-creationrequire-concurrent-index-deletion")
    blob = re.match(rb"[a-z-]+", data[start:])[0].decode()  # type: ignore[index]
    return set(re.findall(rf"(?:{_PREFIXES})-(?:(?!(?:{_PREFIXES})-)[a-z-])+", blob))


def accepted(name: str) -> bool:
    proc = subprocess.run(
        [str(BINARY), f"--exclude={name}", "/dev/null"], capture_output=True, text=True
    )
    return "invalid rule name" not in proc.stderr


def test_every_code_in_the_map_exists() -> None:
    for mapping in [*SQUAWK.values(), *SQUAWK_DIAGNOSTICS.values()]:
        assert set(mapping.ours) <= set(RULE_INFO), mapping


def test_the_map_has_every_rule_of_the_binary() -> None:
    names = binary_rule_names()
    assert len(names) > 60
    rules = {name for name in names if accepted(name)}
    assert names - rules == set(SQUAWK_DIAGNOSTICS)  # unused-ignore is no --exclude name
    assert not accepted("no-such-rule")
    assert rules == set(SQUAWK)


def test_docs_table_is_the_map() -> None:
    page = (REPO / "docs" / "lint.md").read_text()
    assert table() in page


def test_docs_rule_table_is_the_rules() -> None:
    from patcher.lint.formats import rules_table

    assert rules_table() in (REPO / "docs" / "lint.md").read_text()
