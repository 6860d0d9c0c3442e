"""A launch whose instance the cloud already took back when the call returned (a spot
zone that lost capacity meanwhile; found by the chaos test on the sim cloud): the
instance is still given back — terminated, its row ended — not left held by the cloud
(a preempted GCE VM stays, stopped, until it is deleted)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path

from skyd.catalog import Catalog
from skyd.clock import VirtualClock
from skyd.events import EventBus
from skyd.identity import Caller
from skyd.market.live import LiveMarket
from skyd.model import Instance, InstanceState, LaunchRequest
from skyd.runner.process import ProcessRunner
from skyd.scheduler.driver import JobScheduler
from skyd.spec import parse_task
from skyd.store import Store
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store
from skyd.testing.daemon import settings_for_tests
from skyd.testing.memory_cloud import MEMORY_CLOUD, MemoryCloud


@dataclass
class TakenBackCloud(MemoryCloud):
    """The first launch's instance is already preempted when the call returns; it stays
    held (and billed) by the cloud until terminated."""

    taken: int = 0

    async def launch(self, request: LaunchRequest) -> list[Instance]:
        instances = await super().launch(request)
        if self.taken:
            return instances
        self.taken += 1
        for inst in instances:
            machine = self._machines[inst.instance_id]
            machine.instance = replace(machine.instance, state=InstanceState.PREEMPTED)
        return [self._current(i.instance_id) for i in instances]

    def held(self) -> list[str]:
        return sorted(self._machines)


async def test_an_instance_already_gone_at_launch_is_given_back(
    tmp_path: Path, store: Store
) -> None:
    clock = VirtualClock(1_800_000_000.0)
    cloud = TakenBackCloud(clock)
    scheduler = JobScheduler(
        store=store,
        bus=EventBus(),
        clock=clock,
        settings=settings_for_tests(tmp_path),
        providers={MEMORY_CLOUD: cloud},
        runner=ProcessRunner(),
        market=LiveMarket(Catalog([]), {MEMORY_CLOUD: cloud}),
    )
    job = scheduler.submit(
        parse_task("name: gone\nresources: {accelerators: T4}\nrun: echo hi\n"),
        caller=Caller(0, True),
        base_dir="/tmp",
    )
    for _ in range(4):
        await scheduler.reconcile_once()
        await asyncio.gather(*(t for t in asyncio.all_tasks() if t is not asyncio.current_task()))
    first = f"mem-skyd-{job.id}-1-0"
    assert ("launch", (f"skyd-{job.id}-1",)) in cloud.calls
    assert ("terminate", (first,)) in cloud.calls
    assert first not in cloud.held()
    (row,) = [i for i in instance_store.instances_for_job(store, job.id) if i.instance_id == first]
    assert row.state == InstanceState.PREEMPTED and row.ended_at is not None
    kinds = [e.kind for e in job_store.job_events(store, job.id)]
    assert "preempted" in kinds
