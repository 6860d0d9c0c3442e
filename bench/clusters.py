"""Cost of the cluster service: one autostop pass over many UP clusters, and the control-plane
overhead of a cluster launch (placement + store + events; the provider is in-memory).

One pass must stay far below the check interval (30 s by default) for a lab's clusters.

    python -m bench.clusters [CLUSTERS] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from skyd.catalog.catalog import Catalog
from skyd.clock import VirtualClock
from skyd.clusters import ClusterService, ClusterSettings
from skyd.events import EventBus
from skyd.identity import Caller
from skyd.market.live import LiveMarket
from skyd.model import JobState
from skyd.scheduler.placement import Placer
from skyd.spec import parse_task
from skyd.store import jobs as job_store
from skyd.store import open_store
from skyd.testing.memory_cloud import MemoryCloud

TASK = "resources:\n  accelerators: T4:1\n  autostop: 60\nrun: python train.py\n"
OWNER = Caller(uid=1000, is_admin=False)


async def measure(clusters: int, state_dir: Path) -> dict[str, float]:
    clock = VirtualClock(1_800_000_000.0)
    store = open_store(state_dir)
    cloud = MemoryCloud(clock)

    async def cancel(job_id: int, caller: Caller) -> None:
        job_store.transition(store, job_id, JobState.CANCELLED, now=clock.now(), reason="bench")

    service = ClusterService(
        store=store,
        bus=EventBus(),
        clock=clock,
        providers={cloud.name: cloud},
        placer=Placer(LiveMarket(Catalog([]), {cloud.name: cloud})),
        cancel_job=cancel,
        activity=cloud,
        gpu=cloud,
        settings=ClusterSettings(),
    )
    spec = parse_task(TASK)
    launches = []
    for n in range(clusters):
        started = time.perf_counter()
        _cluster, job = await service.launch(spec, name=f"c{n}", caller=OWNER, base_dir="/")
        launches.append(time.perf_counter() - started)
        for state in (
            JobState.PROVISIONING,
            JobState.SETTING_UP,
            JobState.RUNNING,
            JobState.SUCCEEDED,
        ):
            job_store.transition(store, job.id, state, now=clock.now(), reason="bench")
    passes = []
    for _ in range(5):  # idle, not yet due: every cluster is examined, none stopped
        clock.set(clock.now() + 60)
        started = time.perf_counter()
        await service.check_once()
        passes.append(time.perf_counter() - started)
    store.close()
    return {
        "launch_median_ms": statistics.median(launches) * 1000,
        "pass_median_ms": statistics.median(passes) * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clusters", nargs="?", type=int, default=1000, help="UP clusters (1000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.clusters < 1:
        parser.error(f"CLUSTERS {args.clusters}: at least 1")
    clusters = args.clusters
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(measure(clusters, Path(tmp)))
    interval_ms = ClusterSettings().check_seconds * 1000
    if args.json:
        # the baseline is the check interval the pass must fit in, not a time from this run
        share = result["pass_median_ms"] / interval_ms
        report = {"clusters": clusters, **result, "pass_share_of_interval": share}
        print(json.dumps(report, indent=2))
        return 0
    print(f"clusters: {clusters}")
    print(f"cluster launch overhead, median: {result['launch_median_ms']:.2f} ms")
    print(
        f"autostop pass over {clusters} UP clusters, median: {result['pass_median_ms']:.1f} ms "
        f"({result['pass_median_ms'] / interval_ms:.2%} of the {interval_ms / 1000:.0f} s interval)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
