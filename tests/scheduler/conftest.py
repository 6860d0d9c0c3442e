"""Fixtures shared by the scheduler tests: a fresh state store per test, and a scheduler on
it with no provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from skyd.catalog import Catalog
from skyd.clock import VirtualClock
from skyd.config import Settings
from skyd.events import EventBus
from skyd.market.live import LiveMarket
from skyd.runner.process import ProcessRunner
from skyd.scheduler.driver import JobScheduler
from skyd.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "state")
    yield s
    s.close()


@pytest.fixture
def bare_scheduler(tmp_path: Path, store: Store) -> JobScheduler:
    """A scheduler over the AWS catalog with no provider enabled: nothing can start."""
    return JobScheduler(
        store=store,
        bus=EventBus(),
        clock=VirtualClock(1_800_000_000.0),
        settings=Settings(state_dir=tmp_path / "state", socket_path=tmp_path / "s.sock"),
        providers={},
        runner=ProcessRunner(),
        market=LiveMarket(Catalog.load(clouds=["aws"]), {}),
    )
