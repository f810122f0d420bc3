"""Shared by every test: the server plugins and a migrations directory per test."""

import pathlib

import pytest

from tests.enginekit import MigrationDir

pytest_plugins = ["tests.pgserver", "tests.s3server"]


@pytest.fixture
def mdir(tmp_path: pathlib.Path) -> MigrationDir:
    """An empty migrations directory, written file by file."""
    path = tmp_path / "migrations"
    path.mkdir()
    return MigrationDir(path)
