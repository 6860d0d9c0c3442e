"""A queue head that waits for one provider's capacity does not hide the jobs behind it.

The scheduler reads a bounded batch of waiting jobs per pass. With only that batch, more
waiting `local` jobs than the batch holds (local full) kept a `sim` job further back from
ever being looked at, though sim had room: found by bench.api_throughput's working daemon.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from skyd.model import JobState
from skyd.scheduler.driver import JobScheduler
from skyd.scheduler.waiting_queue import BACKFILL_BATCH, PLACEMENT_BATCH
from skyd.store import Store
from skyd.store import jobs as job_store
from skyd.store.records import JobRecord
from skyd.testing.daemon import settings_for_tests
from skyd.testing.scheduler_world import one_pass, scheduler_world, submit_yaml

WAIT_LIMIT_S = 30.0  # the local job's process is real: this only bounds how long we wait


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[JobScheduler, Store]]:
    settings = settings_for_tests(tmp_path)
    settings.local.slots = 1
    settings.local.cancel_grace_seconds = 0.5
    settings.sim.enabled = True
    async with scheduler_world(settings) as world:
        yield world


def submit(scheduler: JobScheduler, infra: str, run: str) -> JobRecord:
    return submit_yaml(scheduler, f"name: t\nresources:\n  infra: {infra}\nrun: {run}\n")


async def test_a_sim_job_behind_a_full_local_queue_is_placed(
    world: tuple[JobScheduler, Store],
) -> None:
    scheduler, store = world
    holder = submit(scheduler, "local", "sleep 600")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_LIMIT_S
    while job_store.get_job(store, holder.id).state is not JobState.RUNNING:
        assert loop.time() < deadline, job_store.get_job(store, holder.id)
        await one_pass(scheduler)
        await asyncio.sleep(0.02)  # its real process starts between passes
    # more local jobs than both windows hold, so the sim job is reached only as the
    # backfill window moves on
    blocked = [
        submit(scheduler, "local", "exit 0")
        for _ in range(PLACEMENT_BATCH + 2 * BACKFILL_BATCH + 5)
    ]
    behind = submit(scheduler, "sim", "exit 0")
    passes = 0
    while job_store.get_job(store, behind.id).state is JobState.PENDING:
        passes += 1
        assert passes <= 4, "the sim job behind the local queue was never placed"
        await one_pass(scheduler)
    # and the queue's order holds for the jobs that wait: none of them started
    assert {job_store.get_job(store, j.id).state for j in blocked} == {JobState.PENDING}


async def test_the_backfill_window_starts_over_at_the_queue_end(
    world: tuple[JobScheduler, Store],
) -> None:
    scheduler, _store = world
    total = PLACEMENT_BATCH + BACKFILL_BATCH + 10
    jobs = [submit(scheduler, "local", "exit 0") for _ in range(total)]
    seen: set[int] = set()
    windows = []
    for _ in range(3):
        batch = scheduler.waiting.batch()
        head, window = batch[:PLACEMENT_BATCH], batch[PLACEMENT_BATCH:]
        assert [j.id for j in head] == [j.id for j in jobs[:PLACEMENT_BATCH]]
        windows.append([j.id for j in window])
        seen.update(j.id for j in batch)
    assert seen == {j.id for j in jobs}  # every waiting job is looked at
    assert windows[0] == [j.id for j in jobs[PLACEMENT_BATCH : PLACEMENT_BATCH + BACKFILL_BATCH]]
    assert windows[1] == [j.id for j in jobs[PLACEMENT_BATCH + BACKFILL_BATCH :]]
    assert windows[2] == windows[0]  # then from right behind the head again
