"""Engine policy tests run on the in-memory fakes: no server, no network, no sleeping."""

from __future__ import annotations

import pytest

from tests.unit.engine.kit import Env


@pytest.fixture
def env() -> Env:
    return Env()
