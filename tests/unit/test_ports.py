"""The database ports stay small (issue 27 item 4): what every run needs in
``MigrationBackend``, the previews in ``PreviewBackend``, other tools' histories in
``ForeignHistory``; both backends implement all three, and the fake session stays short."""

from __future__ import annotations

import inspect
from pathlib import Path

from patcher.db.backend import PostgresBackend
from patcher.engine.ports import ForeignHistory, MigrationBackend, PreviewBackend
from tests.fakes.backend import FakeBackend, FakeDatabase, FakeSession

FAKES = Path(__file__).resolve().parents[1] / "fakes"
RUN_PORT_BUDGET = 21  # was 27 (26 in the issue) before the split: only what every run needs
FAKE_SESSION_LINES = 450  # was 747, with the previews, the database and the faults in one file


def methods(port: type) -> set[str]:
    return {n for n, v in vars(port).items() if inspect.isfunction(v) and not n.startswith("_")}


def test_the_run_port_holds_what_every_run_needs_within_its_budget() -> None:
    run = methods(MigrationBackend)
    assert len(run) <= RUN_PORT_BUDGET, sorted(run)
    assert methods(PreviewBackend) == {
        "table_sizes", "catalog_facts", "verify", "estimate_at_risk", "measure_at_risk",
    }  # fmt: skip
    assert methods(ForeignHistory) == {
        "other_histories", "current_schema", "read_foreign", "holding_foreign",
    }  # fmt: skip
    assert not run & (methods(PreviewBackend) | methods(ForeignHistory))


def test_both_backends_implement_every_port() -> None:
    every = methods(MigrationBackend) | methods(PreviewBackend) | methods(ForeignHistory)
    for backend in (PostgresBackend, FakeBackend):
        missing = {m for m in every if not callable(getattr(backend, m, None))}
        assert not missing, (backend.__name__, sorted(missing))
    session = FakeDatabase().connect()
    assert isinstance(session, PreviewBackend) and isinstance(session, ForeignHistory)


def test_the_fake_run_session_stays_short_and_holds_no_preview() -> None:
    lines = len((FAKES / "backend.py").read_text().splitlines())
    assert lines <= FAKE_SESSION_LINES, lines
    own = {n for n in vars(FakeSession) if not n.startswith("_")}
    assert not own & (methods(PreviewBackend) | methods(ForeignHistory))
