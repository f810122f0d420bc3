"""An expand run over the repository's own corpora (tests/data/corpus, one per layout, and the
shipped migrations/) holds at the first contract version of each and says which statement and
why; the contract run then applies the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.engine import make_runner, query

ROOT = Path(__file__).resolve().parents[2]
HALF = 20  # versions applied before the change set
CORPORA = sorted(p for p in (ROOT / "tests" / "data" / "corpus").iterdir() if p.is_dir())


@pytest.mark.parametrize("corpus", CORPORA, ids=[p.name for p in CORPORA])
def test_expand_holds_at_the_first_contract_version(pg_dsn: str, corpus: Path) -> None:
    run = make_runner(pg_dsn, corpus)
    half = [m["version"] for m in run("status")["pending"]][HALF - 1]
    assert run("migrate", target=half)["ok"]  # the live release's schema: the first 20
    expand = run("migrate", phase="expand")
    assert expand["ok"], expand["error"]
    held = expand["held"]
    assert held, "every corpus has a contract version"
    first = held[0]
    assert first["statements"], first
    shown = first["statements"][0]
    assert shown["file"] and shown["line"] >= 1 and shown["statement"] and shown["reason"]
    assert all(not h["statements"] or h is first or h["version"] > first["version"] for h in held)
    applied = [m["version"] for m in expand["migrations"] if m["version"] is not None]
    assert min(applied, default=half + 1) > half and max(applied, default=0) < first["version"]
    assert any(f"{shown['file']} line {shown['line']}" in w for w in expand["warnings"])
    print(
        f"\n{corpus.name}: expand applied {len(applied)} version(s), held "
        f"{len(held)} from version {first['version']}: {shown['file']} line {shown['line']}: "
        f"{shown['statement']!r} ({shown['reason']})"
    )
    contract = run("migrate", phase="contract")
    assert contract["ok"], contract["error"]
    total = len(query(pg_dsn, "SELECT version FROM schema_migrations"))
    assert total == len(query(pg_dsn, "SELECT 1 FROM schema_migrations WHERE version <= %s",
                              (half,))) + len(applied) + len(held)  # fmt: skip


def test_shipped_migrations_have_no_contract_version(pg_dsn: str) -> None:
    run = make_runner(pg_dsn, ROOT / "migrations")
    expand = run("migrate", phase="expand")
    assert expand["ok"] and expand["held"] == []
