"""A JobScheduler on a real store file and real providers, driven pass by pass by a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, MutableMapping

from skyd.catalog import Catalog
from skyd.clock import VirtualClock
from skyd.config import Settings
from skyd.daemon_providers import build_providers
from skyd.events import EventBus
from skyd.identity import Caller
from skyd.market.live import LiveMarket
from skyd.model import JobState
from skyd.providers.base import Provider
from skyd.runner.process import ProcessRunner
from skyd.scheduler.driver import JobScheduler
from skyd.spec import parse_task
from skyd.store import Store, open_store
from skyd.store import jobs as job_store
from skyd.store.records import JobRecord

START = 1_800_000_000.0


@contextlib.asynccontextmanager
async def scheduler_world(
    settings: Settings,
    *,
    clock: VirtualClock | None = None,
    providers: MutableMapping[str, Provider] | None = None,
    runner: ProcessRunner | None = None,
) -> AsyncIterator[tuple[JobScheduler, Store]]:
    """The scheduler and its store; on exit every unfinished job's processes and instances
    are given back (a test's jobs must not outlive it) and the store is closed."""
    clock = clock or VirtualClock(START)
    providers = providers if providers is not None else build_providers(settings, clock)
    runner = runner or ProcessRunner()
    store = open_store(settings.state_dir)
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
        unfinished = tuple(s for s in JobState if not s.is_terminal)
        for job in job_store.jobs_in_states(store, unfinished):
            await scheduler.attempts.release(job, kill_grace=0.0)
        await runner.aclose()
        store.close()


async def one_pass(scheduler: JobScheduler) -> None:
    """One scheduler pass, every step it spawned run to its end."""
    await scheduler.reconcile_once()
    await asyncio.gather(*scheduler.tasks.inflight.values())


def submit_yaml(scheduler: JobScheduler, task_yaml: str) -> JobRecord:
    """Submit a task file's text as an admin (uid 0)."""
    return scheduler.submit(parse_task(task_yaml), caller=Caller(0, True), base_dir="/tmp")
