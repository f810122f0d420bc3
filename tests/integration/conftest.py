"""Fixtures for engine tests (the helpers themselves live in enginekit.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from enginekit import MigrationDir, Run, make_runner


@pytest.fixture
def mdir(tmp_path: Path) -> MigrationDir:
    path = tmp_path / "migrations"
    path.mkdir()
    return MigrationDir(path)


@pytest.fixture
def run(pg_dsn: str, mdir: MigrationDir) -> Run:
    return make_runner(pg_dsn, mdir.path)
