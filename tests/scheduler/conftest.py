"""Fixtures shared by the scheduler tests: a fresh state store per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from skyd.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "state")
    yield s
    s.close()
