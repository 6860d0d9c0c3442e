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

from skyd.catalog import Catalog
from skyd.clock import VirtualClock
from skyd.daemon import build_providers
from skyd.events import EventBus
from skyd.identity import Caller
from skyd.market.live import LiveMarket
from skyd.model import JobState
from skyd.runner.process import ProcessRunner
from skyd.scheduler.driver import BACKFILL_BATCH, PLACEMENT_BATCH, JobScheduler
from skyd.spec import parse_task
from skyd.store import Store, open_store
from skyd.store import jobs as job_store
from skyd.store.records import JobRecord
from skyd.testing.daemon import settings_for_tests

WAIT_LIMIT_S = 30.0  # the local job's process is real: this only bounds how long we wait


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[JobScheduler, Store]]:
    settings = settings_for_tests(tmp_path)
    settings.local.slots = 1
    settings.local.cancel_grace_seconds = 0.5
    settings.sim.enabled = True
    clock = VirtualClock(1_800_000_000.0)
    providers = build_providers(settings, clock)
    store = open_store(settings.state_dir)
    runner = ProcessRunner()
    scheduler = JobScheduler(
        store=store,
        bus=EventBus(),
        clock=clock,
        settings=settings,
        providers=providers,
        runner=runner,
        market=LiveMarket(Catalog.load(settings.catalog_dir), providers),
    )
    try:
        yield scheduler, store
    finally:
        for job in job_store.jobs_in_states(store, tuple(s for s in JobState if not s.is_terminal)):
            await scheduler.attempts.release(job, kill_grace=0.0)
        await runner.aclose()
        store.close()


def submit(scheduler: JobScheduler, infra: str, run: str) -> JobRecord:
    spec = parse_task(f"name: t\nresources:\n  infra: {infra}\nrun: {run}\n")
    return scheduler.submit(spec, caller=Caller(0, True), base_dir="/tmp")


async def one_pass(scheduler: JobScheduler) -> None:
    await scheduler.reconcile_once()
    await asyncio.gather(*scheduler._inflight.values())


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
        batch = scheduler._waiting_batch()
        head, window = batch[:PLACEMENT_BATCH], batch[PLACEMENT_BATCH:]
        assert [j.id for j in head] == [j.id for j in jobs[:PLACEMENT_BATCH]]
        windows.append([j.id for j in window])
        seen.update(j.id for j in batch)
    assert seen == {j.id for j in jobs}  # every waiting job is looked at
    assert windows[0] == [j.id for j in jobs[PLACEMENT_BATCH : PLACEMENT_BATCH + BACKFILL_BATCH]]
    assert windows[1] == [j.id for j in jobs[PLACEMENT_BATCH + BACKFILL_BATCH :]]
    assert windows[2] == windows[0]  # then from right behind the head again
