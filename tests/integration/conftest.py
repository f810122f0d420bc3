"""Fixtures for engine tests (the helpers live in tests/enginekit.py)."""

from __future__ import annotations

import pytest

from tests.enginekit import MigrationDir, Run, make_runner


@pytest.fixture
def run(pg_dsn: str, mdir: MigrationDir) -> Run:
    return make_runner(pg_dsn, mdir.path)
