"""``-- patcher:contract``: a version its author declares a contract version (SPEC 11 and 12).

A recipe's contract version says what it is in its leading comments (`patcher new --recipe`
writes it). Lint then reports no ``BREAKS_PREVIOUS_RELEASE`` for its statements: breaking the
previous release is what the version is for, and it runs in the contract phase. The expand
phase holds such a version even when no statement of it classifies contract.
"""

from __future__ import annotations

import re
from typing import Final

DIRECTIVE: Final = "patcher:contract"
_LEADING: Final = re.compile(r"\A(?:[ \t]*(?:--[^\n]*)?\r?\n)*")
_DECLARED: Final = re.compile(r"^[ \t]*--[ \t]*patcher:contract\b", re.MULTILINE | re.IGNORECASE)


def declares_contract(text: str) -> bool:
    """Whether a line of the leading comments (before the first statement) is the directive."""
    leading = _LEADING.match(text[:65536])
    return leading is not None and _DECLARED.search(leading.group(0)) is not None
