"""Regression (#12): the scheduler's loop, cancelled just as a change arrives, stops. With
`asyncio.wait_for` it swallowed the cancel and ran on, so SIGTERM hung the daemon."""

from __future__ import annotations

import asyncio

import pytest

from skyd.scheduler.driver import JobScheduler


@pytest.mark.parametrize("turns_between", [0, 1, 2, 3])
async def test_a_cancel_that_meets_a_change_stops_the_loop(
    bare_scheduler: JobScheduler, turns_between: int
) -> None:
    scheduler = bare_scheduler
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
