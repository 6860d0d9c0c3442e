"""Provider calls per scheduler tick with N running cloud jobs (issue #13, point 5).

The real scheduler (JobScheduler, its store on a real SQLite file) watches N RUNNING jobs
spread over 2 providers x 2 regions, each holding one instance, for a few ticks of a
virtual clock. The providers count their describe calls. The baseline, measured in the
same run, is what watching each job with its own describe costs (one call per job per tick,
as the scheduler did before): the ratio is the figure.

    python -m bench.cloud_calls --jobs 500 --ticks 10 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from skyd.catalog import Catalog
from skyd.clock import VirtualClock
from skyd.config import Settings
from skyd.events import EventBus
from skyd.market.live import LiveMarket
from skyd.model import (
    Instance,
    InstanceState,
    JobState,
    LaunchRequest,
    Offer,
    RunPhase,
    RunStatus,
)
from skyd.providers.base import AttemptRunner
from skyd.runner.process import ProcessRunner, RunCommand
from skyd.scheduler.driver import JobScheduler
from skyd.spec import parse_task
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store
from skyd.store import open_store

REGIONS = ("region-1", "region-2")


class _Running:
    """The attempt runner of a provider whose instances run the job: always running."""

    async def start(
        self, attempt_dir: Path, command: RunCommand, instance_ids: Sequence[str]
    ) -> int:
        return 1

    async def status(self, attempt_dir: Path) -> RunStatus:
        return RunStatus(RunPhase.RUN, 0, None, 1.0, None, 1)

    async def kill(self, attempt_dir: Path, grace_seconds: float) -> None:
        return None


class CountingCloud:
    """A provider whose every instance runs; it counts describe calls and ids asked for."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.describe_calls = 0
        self.ids_described = 0
        self._runner = _Running()

    @property
    def attempt_runner(self) -> AttemptRunner:
        return self._runner

    def offers(self) -> Sequence[Offer]:
        return []

    async def launch(self, request: LaunchRequest) -> list[Instance]:
        raise AssertionError("the benchmark launches nothing")

    async def describe(
        self, instance_ids: Sequence[str] | None = None, tags: Mapping[str, str] | None = None
    ) -> dict[str, InstanceState]:
        self.describe_calls += 1
        ids = list(instance_ids or [])
        self.ids_described += len(ids)
        return {i: InstanceState.RUNNING for i in ids}

    async def stop(self, instance_ids: Sequence[str]) -> None:
        return None

    async def start(self, instance_ids: Sequence[str]) -> None:
        return None

    async def terminate(self, instance_ids: Sequence[str]) -> None:
        return None

    async def aclose(self) -> None:
        return None


def _seed(store: Any, providers: Sequence[CountingCloud], jobs: int) -> None:
    spec = parse_task("name: bench\nrun: sleep 1\n").to_json()
    for n in range(jobs):
        provider = providers[n % len(providers)]
        region = REGIONS[(n // len(providers)) % len(REGIONS)]
        job, _ = job_store.insert_job(
            store,
            name=f"bench-{n}",
            owner_uid=0,
            owner_name="root",
            project=None,
            priority=0,
            spec_json=spec,
            base_dir="/tmp",
            deadline=None,
            now=1.0,
        )
        placement = json.dumps({"provider": provider.name, "region": region, "zone": "z"})
        job_store.transition(
            store,
            job.id,
            JobState.PROVISIONING,
            now=2.0,
            reason="bench",
            attempt=1,
            placement_json=placement,
        )
        inst = Instance(
            f"{region}/i-{n}",
            provider.name,
            provider.name,
            region,
            "z",
            "t",
            False,
            InstanceState.RUNNING,
        )
        with store.transaction() as conn:
            instance_store.insert_instance(
                conn,
                inst,
                job_id=job.id,
                attempt=1,
                client_token=f"skyd-{job.id}-1",
                hourly_price_micros=0,
                now=2.0,
            )
        for state in (JobState.SETTING_UP, JobState.RUNNING):
            job_store.transition(store, job.id, state, now=3.0, reason="bench")


async def measure(jobs: int, ticks: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="skyd-bench-calls-") as tmp:
        root = Path(tmp)
        settings = Settings(state_dir=root / "state", socket_path=root / "skyd.sock")
        settings.scheduler_tick_seconds = 1.0
        clock = VirtualClock(10.0)
        store = open_store(settings.state_dir)
        clouds = [CountingCloud("cloud-a"), CountingCloud("cloud-b")]
        providers = {c.name: c for c in clouds}
        _seed(store, clouds, jobs)
        scheduler = JobScheduler(
            store=store,
            bus=EventBus(),
            clock=clock,
            settings=settings,
            providers=providers,
            runner=ProcessRunner(),
            market=LiveMarket(Catalog([]), providers),
        )
        per_tick = []
        for _ in range(ticks):
            await clock.advance(settings.scheduler_tick_seconds)
            before = sum(c.describe_calls for c in clouds)
            await scheduler.reconcile_once()
            await asyncio.gather(*list(scheduler.tasks.inflight.values()))
            per_tick.append(sum(c.describe_calls for c in clouds) - before)
        running = len(job_store.jobs_in_states(store, (JobState.RUNNING,)))
        # the baseline of the same run: each job's instances described on their own
        before = sum(c.describe_calls for c in clouds)
        for job in job_store.jobs_in_states(store, (JobState.RUNNING,)):
            for inst in instance_store.instances_for_job(store, job.id):
                await providers[inst.provider].describe([inst.instance_id])
        baseline = sum(c.describe_calls for c in clouds) - before
        store.close()
    calls = max(per_tick)
    return {
        "benchmark": "cloud_calls",
        "jobs": jobs,
        "running_after": running,
        "groups": len(clouds) * len(REGIONS),
        "ticks": ticks,
        "describe_calls_per_tick": per_tick,
        "max_calls_per_tick": calls,
        "baseline_calls_per_tick": baseline,
        "ratio_vs_baseline": round(calls / baseline, 4) if baseline else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--ticks", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    result = asyncio.run(measure(args.jobs, args.ticks))
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['jobs']} running jobs over {result['groups']} (provider, region) pairs: "
        f"{result['max_calls_per_tick']} describe calls per tick "
        f"(baseline, one per job: {result['baseline_calls_per_tick']})"
    )


if __name__ == "__main__":
    main()
