"""A cluster service over a real store and the in-memory cloud, on a virtual clock, for tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from skyd.catalog.catalog import Catalog
from skyd.clock import VirtualClock
from skyd.clusters import ActivityProbe, ClusterService, ClusterSettings
from skyd.events import EventBus
from skyd.market.live import LiveMarket
from skyd.model import JobState
from skyd.providers.base import Provider
from skyd.scheduler.placement import Placer
from skyd.scheduler.service import Caller
from skyd.spec import TaskSpec, parse_task
from skyd.store import Store, open_store
from skyd.store import jobs as job_store
from skyd.store.clusters import cluster_events
from skyd.testing.memory_cloud import MemoryCloud

START = 1_800_000_000.0
ALICE = Caller(uid=1000, is_admin=False)
BOB = Caller(uid=1001, is_admin=False)
ADMIN = Caller(uid=0, is_admin=True)
CHECK_SECONDS = 30.0

GPU_TASK = """
name: train
resources:
  accelerators: T4:1
setup: pip install torch
run: python train.py
"""


def gpu_task(autostop: str | None = None) -> TaskSpec:
    text = GPU_TASK
    if autostop is not None:
        text = text.replace(
            "  accelerators: T4:1\n", f"  accelerators: T4:1\n  autostop: {autostop}\n"
        )
    return parse_task(text)


@dataclass
class ClusterWorld:
    store: Store
    clock: VirtualClock
    cloud: MemoryCloud
    service: ClusterService
    cancelled: list[int]

    def kinds(self, name: str) -> list[str]:
        cluster = next(c for c in self.service.all_clusters(include_down=True) if c.name == name)
        return [e.kind for e in cluster_events(self.store, cluster.id)]

    def move_job(self, job_id: int, *states: JobState) -> None:
        """Walk a job through the lifecycle as the scheduler would (at the clock's time)."""
        for state in states:
            job_store.transition(
                self.store, job_id, state, now=self.clock.now(), reason=f"test: {state.value}"
            )

    def finish_job(self, job_id: int) -> None:
        self.move_job(
            job_id,
            JobState.PROVISIONING,
            JobState.SETTING_UP,
            JobState.RUNNING,
            JobState.SUCCEEDED,
        )


def cluster_world(
    tmp_path: Path,
    *,
    boot_seconds: float = 0.0,
    providers: Callable[[VirtualClock], dict[str, Provider]] | None = None,
    gpu_busy_percent: float = 10.0,
    activity: ActivityProbe | None = None,
) -> ClusterWorld:
    clock = VirtualClock(START)
    store = open_store(tmp_path / "state")
    cloud = MemoryCloud(clock, boot_seconds=boot_seconds)
    enabled: dict[str, Provider] = {cloud.name: cloud} if providers is None else providers(clock)
    market = LiveMarket(Catalog([]), enabled)
    cancelled: list[int] = []

    async def cancel(job_id: int, caller: Caller) -> None:
        # what the scheduler's cancel does to the store (its processes are not the point here)
        cancelled.append(job_id)
        job_store.transition(
            store, job_id, JobState.CANCELLED, now=clock.now(), reason=f"cancelled by {caller.uid}"
        )

    service = ClusterService(
        store=store,
        bus=EventBus(),
        clock=clock,
        providers=enabled,
        placer=Placer(market),
        cancel_job=cancel,
        activity=activity or cloud,
        gpu=cloud,
        settings=ClusterSettings(check_seconds=CHECK_SECONDS, gpu_busy_percent=gpu_busy_percent),
    )
    return ClusterWorld(store, clock, cloud, service, cancelled)
