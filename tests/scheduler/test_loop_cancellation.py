"""Regression (#12): the scheduler's loop, cancelled just as a change arrives, stops. With
`asyncio.wait_for` it swallowed the cancel and ran on, so SIGTERM hung the daemon."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from skyd.catalog import Catalog
from skyd.clock import VirtualClock
from skyd.config import Settings
from skyd.events import EventBus
from skyd.market.live import LiveMarket
from skyd.runner.process import ProcessRunner
from skyd.scheduler.driver import JobScheduler
from skyd.store import open_store


@pytest.mark.parametrize("turns_between", [0, 1, 2, 3])
async def test_a_cancel_that_meets_a_change_stops_the_loop(
    tmp_path: Path, turns_between: int
) -> None:
    store = open_store(tmp_path / "state")
    try:
        scheduler = JobScheduler(
            store=store,
            bus=EventBus(),
            clock=VirtualClock(1_800_000_000.0),
            settings=Settings(state_dir=tmp_path / "state", socket_path=tmp_path / "s.sock"),
            providers={},
            runner=ProcessRunner(),
            market=LiveMarket(Catalog.load(clouds=["aws"]), {}),
        )
        loop_task = asyncio.create_task(scheduler.run())
        for _ in range(10):  # the loop ran its pass and waits for a change
            await asyncio.sleep(0)
        scheduler.bus.changed.set()
        for _ in range(turns_between):
            await asyncio.sleep(0)
        loop_task.cancel()
        done, _ = await asyncio.wait([loop_task], timeout=5)
        if not done:  # it swallowed the cancel: stop it for good before failing
            loop_task.cancel()
        assert loop_task in done and loop_task.cancelled()
    finally:
        store.close()
