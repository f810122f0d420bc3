"""Lint's release rules (SPEC 11): ``BREAKS_PREVIOUS_RELEASE`` for each contract statement,
with the reason and the recipe that avoids it, and ``MIXED_EXPAND_CONTRACT`` once for a script
that holds both expand and contract statements. The parse alone decides (no catalog): where
the catalog could change the answer, the message says so. A version declared with
``-- patcher:contract`` gets no ``BREAKS_PREVIOUS_RELEASE`` (``sql/phases/declared.py``)."""

from __future__ import annotations

from collections.abc import Iterable

from patcher.sql.lexer import Statement
from patcher.sql.phases.classify import (
    BREAKS_CODE,
    MIXED_CODE,
    ChangeSet,
    Classified,
    iter_classified,
)
from patcher.sql.phases.declared import declares_contract
from patcher.sql.risks.walk import Risk

_CATALOG_NOTE = (
    "; offline this is the safe answer: a dry run against the database may find it expand"
)


def release_risks(text: str, statements: Iterable[Statement], change_set: ChangeSet) -> list[Risk]:
    """The release findings of one script, as risks placed at their statements (statements
    are classified one at a time and only the contract ones kept)."""
    out: list[Risk] = []
    counts = {"expand": 0, "contract": 0, "neutral": 0}
    for found in iter_classified(text, statements, change_set):
        counts[found.phase] += 1
        if found.phase == "contract":
            out.append(_breaks(found))
    declared = declares_contract(text)  # breaking is the version's purpose: not reported
    if counts["expand"] and counts["contract"]:
        why = (
            f"this version has {counts['expand']} expand and {counts['contract']} contract "
            "statement(s): migrate --phase expand holds all of it until the previous release "
            "is gone; split the contract statements into a later version"
        )
        first = out[0]
        out.append(Risk(MIXED_CODE, first.statement, why, None, first.offset))
    return [r for r in out if r.code != BREAKS_CODE] if declared else out


def _breaks(found: Classified) -> Risk:
    verdict = found.verdict
    why = f"contract ({verdict.kind}): {verdict.reason}"
    if verdict.recipe is not None:
        why += (
            f"; do it without breaking the previous release with "
            f"`patcher new --recipe {verdict.recipe}` (an expand version now, a contract one "
            "after the release)"
        )
    else:
        why += "; stop using it in one release, and do this in the next"
    if verdict.catalog:
        why += _CATALOG_NOTE
    return Risk(BREAKS_CODE, found.statement, why, None, found.offset)
