"""Classification against labelled statements from real public migration histories and SPEC
11's list (tests/data/phases/README.md): no contract statement may be classified expand."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from patcher.sql.phases.classify import ChangeSet, classify_statement

DATA = Path(__file__).resolve().parents[1] / "data" / "phases"


def _rows(name: str) -> list[dict[str, str | None]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _classified() -> list[tuple[dict[str, str | None], str]]:
    """Each labelled statement with its phase; a file's statements share one change set (the
    file is one version), as in a run; SPEC's statements stand alone."""
    out: list[tuple[dict[str, str | None], str]] = []
    change_set, path = ChangeSet(), None
    for row in _rows("real.jsonl"):
        if row["path"] != path:
            change_set, path = ChangeSet(), row["path"]
        phase = classify_statement(str(row["statement"]), change_set)[0].phase
        if row["label"] is not None:
            out.append((row, phase))
    for row in _rows("spec.jsonl"):
        out.append((row, classify_statement(str(row["statement"]), ChangeSet())[0].phase))
    return out


def test_labelled_set_is_large_enough_and_from_several_repositories() -> None:
    rows = [row for row, _ in _classified()]
    assert len(rows) >= 150
    repos = {row.get("repo") for row in rows if row.get("repo")}
    assert len(repos) >= 3
    assert sum(row["label"] == "contract" for row in rows) >= 100


def test_no_contract_statement_is_classified_expand_and_precision_is_printed() -> None:
    found = _classified()
    confusion = Counter((row["label"], phase) for row, phase in found)
    contract_true = [(row, phase) for row, phase in found if row["label"] == "contract"]
    missed = [row["statement"] for row, phase in contract_true if phase != "contract"]
    said_contract = sum(phase == "contract" for _, phase in found)
    hits = len(contract_true) - len(missed)
    recall = hits / len(contract_true)
    precision = hits / said_contract
    print(
        f"\nphase classification on {len(found)} labelled statements: contract recall "
        f"{recall:.1%} ({hits}/{len(contract_true)}), precision {precision:.1%} "
        f"({hits}/{said_contract}); confusion (label, classified): {dict(confusion)}"
    )
    assert not missed, missed
    assert precision >= 0.7  # DO bodies and non-unique DROP INDEX cost it offline
