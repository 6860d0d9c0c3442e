"""Jobs through a real daemon onto the real Slurm test cluster: a 2-node gang, a GRES GPU job,
a job Slurm preempts (requeue) that skyd recovers, and a cancel."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skyctl.client import DaemonClient
from skyd.testing.daemon import daemon_thread, job_log, job_when, settings_for_tests, wait_until
from tests.providers.slurm.slurm_world import (
    CLUSTER,
    sbatch,
    squeue_ids,
    until_left_squeue,
)

ENDED = ("SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED")
pytestmark = [pytest.mark.timeout(400), pytest.mark.usefixtures("slurm_cluster")]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[DaemonClient]:
    settings = settings_for_tests(tmp_path)
    settings.local.enabled = False
    settings.slurm = {
        "clusters": [
            {"name": CLUSTER, "work_dir": str(tmp_path / "cluster"), "python": sys.executable}
        ]
    }
    async with daemon_thread(settings) as daemon:
        with DaemonClient(daemon.socket_path) as c:
            yield c


async def submit(client: DaemonClient, task: str, base: Path) -> int:
    job = await asyncio.to_thread(client.submit_task, task, str(base), None)
    return int(job["id"])


async def until_job(client: DaemonClient, job_id: int, states: tuple[str, ...]) -> Any:
    # Slurm schedules every few seconds; other test runs may hold the cluster
    return await job_when(client, job_id, states, wait_s=240, interval=0.2)


async def test_two_node_job_runs_every_rank(client: DaemonClient, tmp_path: Path) -> None:
    task = (
        "name: gang\nnum_nodes: 2\nresources: {infra: slurm/test/lab}\n"
        "setup: echo setup-$SKYPILOT_NODE_RANK\n"
        'run: echo "rank=$SKYPILOT_NODE_RANK size=$SKYPILOT_NUM_NODES '
        'ips=$(echo $SKYPILOT_NODE_IPS)"\n'
    )
    job_id = await submit(client, task, tmp_path)
    final = await until_job(client, job_id, ENDED)
    log = await job_log(client, job_id)
    assert final["state"] == "SUCCEEDED", (final, log)
    assert final["placement"]["provider"] == "slurm"
    assert "rank=0 size=2 ips=127.0.0.1 127.0.0.1" in log
    assert "rank=1" not in log and "setup-1" not in log  # rank 0 only, by default
    other = await job_log(client, job_id, node=1)
    assert "rank=1 size=2 ips=127.0.0.1 127.0.0.1" in other and "rank=0" not in other
    every = await job_log(client, job_id, all_nodes=True)
    assert "rank=0 size=2" in every and "(node 1) rank=1 size=2 ips=127.0.0.1 127.0.0.1" in every


async def test_gpu_job_gets_its_gres(client: DaemonClient, tmp_path: Path) -> None:
    task = (
        "name: gpu\nresources: {infra: slurm, accelerators: FAKE:1}\n"
        "run: echo gpus=$CUDA_VISIBLE_DEVICES\n"
    )
    job_id = await submit(client, task, tmp_path)
    final = await until_job(client, job_id, ENDED)
    log = await job_log(client, job_id)
    assert final["state"] == "SUCCEEDED", (final, log)
    assert "gpus=0" in log


async def test_cpus_and_memory_are_a_share_of_a_bigger_node(
    client: DaemonClient, tmp_path: Path
) -> None:
    # the test nodes have 2 CPUs and 2 GiB: `cpus: 1` is one of them, not a 1-CPU type
    task = (
        "name: share\nresources: {infra: slurm, cpus: 1, memory: 1}\n"
        'run: echo "cpt=$SLURM_CPUS_PER_TASK mem=$SLURM_MEM_PER_NODE"\n'
    )
    job_id = await submit(client, task, tmp_path)
    final = await until_job(client, job_id, ENDED)
    log = await job_log(client, job_id)
    assert final["state"] == "SUCCEEDED", (final, log)
    assert "-2cpu-2gb" in final["placement"]["instance_type"], final["placement"]
    assert "cpt=1 mem=1024" in log, log


async def test_preempted_job_is_recovered(client: DaemonClient, tmp_path: Path) -> None:
    marker = tmp_path / "first-attempt-ran"
    task = (
        "name: preemptible\nnum_nodes: 2\nresources: {infra: slurm/test/lab}\n"
        # FAILOVER retries where it ran (EAGER_NEXT_REGION would avoid this cluster a while)
        "job_recovery: {strategy: FAILOVER}\n"
        f"run: |\n  m={marker}-$SKYPILOT_NODE_RANK\n"
        '  if [ ! -e "$m" ]; then touch "$m"; sleep 300; fi\n  echo done\n'
    )
    job_id = await submit(client, task, tmp_path)
    await until_job(client, job_id, ("RUNNING",))
    await asyncio.to_thread(wait_until, Path(f"{marker}-0").exists, timeout=60)
    urgent = await asyncio.to_thread(
        sbatch, "-p", "urgent", "-N", "2", "--cpus-per-task=2", "--wrap", "true"
    )
    final = await until_job(client, job_id, ENDED)
    await until_left_squeue(urgent)
    log = await job_log(client, job_id)
    assert final["state"] == "SUCCEEDED", (final, log)
    assert final["preemptions"] >= 1
    assert "done" in log


async def test_cancel_leaves_nothing_in_squeue(client: DaemonClient, tmp_path: Path) -> None:
    task = "name: long\nresources: {infra: slurm}\nrun: echo started; sleep 300\n"
    job_id = await submit(client, task, tmp_path)
    await until_job(client, job_id, ("RUNNING",))
    before = await asyncio.to_thread(squeue_ids)
    await asyncio.to_thread(client.cancel_job, job_id)
    final = await until_job(client, job_id, ENDED)
    assert final["state"] == "CANCELLED"
    await asyncio.to_thread(
        wait_until, lambda: not (before & squeue_ids()), timeout=60, interval=0.2
    )


async def test_restarted_daemon_picks_its_slurm_job_up(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    settings.local.enabled = False
    settings.slurm = {
        "clusters": [
            {"name": CLUSTER, "work_dir": str(tmp_path / "cluster"), "python": sys.executable}
        ]
    }
    release = tmp_path / "release"
    task = (
        "name: outlives\nresources: {infra: slurm}\n"
        f"run: |\n  echo waiting\n  until [ -e {release} ]; do sleep 0.2; done\n  echo finished\n"
    )
    async with daemon_thread(settings) as first:
        with DaemonClient(first.socket_path) as c:
            job_id = await submit(c, task, tmp_path)
            await until_job(c, job_id, ("RUNNING",))
    release.touch()  # the job goes on while no daemon watches it
    async with daemon_thread(settings) as second:
        with DaemonClient(second.socket_path) as c:
            final = await until_job(c, job_id, ENDED)
            log = await job_log(c, job_id)
    assert final["state"] == "SUCCEEDED", (final, log)
    assert final["preemptions"] == 0 and final["restarts"] == 0
    assert "waiting" in log and "finished" in log


async def test_check_prices_and_optimize_show_partitions_beside_the_clouds(
    client: DaemonClient, tmp_path: Path
) -> None:
    """The lab's partitions next to the clouds, with why each was or was not chosen."""

    def ask() -> tuple[Any, Any, Any, Any]:
        checks = client.request("GET", "/v1/check")
        prices = client.request("GET", "/v1/prices", query={"cloud": "slurm"})
        gpu = "name: g\nnum_nodes: 2\nresources: {cpus: 2}\nrun: echo hi\n"
        fits = client.request("POST", "/v1/optimize", body={"task_yaml": gpu})
        too_many = client.request(
            "POST", "/v1/optimize", body={"task_yaml": gpu.replace("num_nodes: 2", "num_nodes: 3")}
        )
        return checks, prices, fits, too_many

    checks, prices, fits, too_many = await asyncio.to_thread(ask)
    assert [c["cloud"] for c in checks] == ["aws", "gcp", "azure", "slurm"]
    [slurm] = [c for c in checks if c["cloud"] == "slurm"]
    assert slurm["enabled"] and "partitions lab (2 nodes), urgent (2 nodes)" in slurm["reason"]
    assert {p["zone"] for p in prices} >= {"lab"} and {p["price"] for p in prices} == {0.0}
    # a 2-node gang: a partition at the internal price; the clouds' offers are there too,
    # each saying why not (disabled here)
    assert fits["chosen"]["cloud"] == "slurm", fits["reason"]
    clouds = [c for c in fits["candidates"] if c["cloud"] in ("aws", "gcp", "azure")]
    assert clouds and all(c["excluded"] for c in clouds)
    assert "provider_disabled" in {c["excluded"] for c in clouds}
    # three nodes: more than either partition has, and it says so
    lab = [c for c in too_many["candidates"] if c["cloud"] == "slurm"]
    assert too_many["chosen"] is None and lab
    assert {c["excluded"] for c in lab} == {"too_few_nodes"}, lab
