"""Jobs through a real daemon onto the fake Kubernetes cluster: a 2-node Indexed Job, and a
gang whose pod is evicted, recovered by skyd."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skyctl.client import DaemonClient
from skyd.testing.daemon import daemon_thread, job_log, job_when, settings_for_tests, wait_until
from skyd.testing.fake_kube.server import FakeKubeServer
from tests.providers.kubernetes.kube_world import CONTEXT

ENDED = ("SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED")
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
async def client(tmp_path: Path, cluster: FakeKubeServer) -> AsyncIterator[DaemonClient]:
    settings = settings_for_tests(tmp_path)
    settings.local.enabled = False
    settings.kubernetes = {"enabled": True, "contexts": [CONTEXT], "linger_s": 60}
    async with daemon_thread(settings) as daemon:
        with DaemonClient(daemon.socket_path) as c:
            yield c


async def until_job(client: DaemonClient, job_id: int, states: tuple[str, ...]) -> Any:
    # pods are processes; a machine shared by many test runs is slow
    return await job_when(client, job_id, states, wait_s=150, interval=0.1)


async def test_two_node_job_on_kubernetes(client: DaemonClient, tmp_path: Path) -> None:
    task = (
        "name: gang\nnum_nodes: 2\nresources: {infra: k8s/fake, accelerators: A100:1}\n"
        'run: echo "rank=$SKYPILOT_NODE_RANK size=$SKYPILOT_NUM_NODES"\n'
    )
    job = await asyncio.to_thread(client.submit_task, task, str(tmp_path), None)
    final = await until_job(client, int(job["id"]), ENDED)
    log = await job_log(client, int(job["id"]))
    assert final["state"] == "SUCCEEDED", (final, log)
    assert final["placement"]["provider"] == "kubernetes"
    assert "rank=0 size=2" in log and "rank=1" not in log  # rank 0 only, by default
    assert "rank=1 size=2" in await job_log(client, int(job["id"]), node=1)
    every = await job_log(client, int(job["id"]), all_nodes=True)
    assert "rank=0 size=2" in every and "(node 1) rank=1 size=2" in every


async def test_evicted_pod_is_recovered(
    client: DaemonClient, cluster: FakeKubeServer, tmp_path: Path
) -> None:
    marker = tmp_path / "first-attempt-ran"
    task = (
        "name: evictable\nnum_nodes: 2\nresources: {infra: k8s}\n"
        "job_recovery: {strategy: FAILOVER}\n"
        f"run: |\n  m={marker}-$SKYPILOT_NODE_RANK\n"
        '  if [ ! -e "$m" ]; then touch "$m"; sleep 300; fi\n  echo done\n'
    )
    job = await asyncio.to_thread(client.submit_task, task, str(tmp_path), None)
    job_id = int(job["id"])
    await until_job(client, job_id, ("RUNNING",))
    await asyncio.to_thread(wait_until, Path(f"{marker}-0").exists, timeout=90)
    [first, *_] = cluster.pods(f"skyd-job={job_id}")
    cluster.evict("default", first["metadata"]["name"])
    final = await until_job(client, job_id, ENDED)
    log = await job_log(client, job_id)
    assert final["state"] == "SUCCEEDED", (final, log)
    assert final["preemptions"] == 1 and "done" in log, sorted(final)


async def test_a_docker_image_is_the_pod_image(
    client: DaemonClient, cluster: FakeKubeServer, tmp_path: Path
) -> None:
    task = (
        "name: own-image\nresources: {infra: k8s, image_id: 'docker:ghcr.io/lab/trainer:1.2'}\n"
        "run: echo in-the-lab-image\n"
    )
    job = await asyncio.to_thread(client.submit_task, task, str(tmp_path), None)
    images: set[str] = set()
    while (final := client.get_job(int(job["id"])))["state"] not in ENDED:
        # the pod exists from launch until skyd deletes the Job after the run
        images |= {c["image"] for p in cluster.pods() for c in p["spec"]["containers"]}
        await asyncio.sleep(0.05)
    log = await job_log(client, int(job["id"]))
    assert final["state"] == "SUCCEEDED", (final, log)
    assert "in-the-lab-image" in log
    assert images == {"ghcr.io/lab/trainer:1.2"}  # never the configured default image


async def test_cpus_and_memory_are_the_pods_share_of_a_bigger_node(
    client: DaemonClient, cluster: FakeKubeServer, tmp_path: Path
) -> None:
    # the fake nodes are bigger than this: on a pool `cpus: 2` asks for 2 of a node's CPUs
    task = "name: share\nresources: {infra: k8s, cpus: 2, memory: 3}\nrun: echo shared\n"
    job = await asyncio.to_thread(client.submit_task, task, str(tmp_path), None)
    asked: list[Any] = []
    while (final := client.get_job(int(job["id"])))["state"] not in ENDED:
        asked += [c["resources"] for p in cluster.pods() for c in p["spec"]["containers"]]
        await asyncio.sleep(0.05)
    log = await job_log(client, int(job["id"]))
    assert final["state"] == "SUCCEEDED", (final, log)
    assert asked and all(
        r["limits"] == r["requests"] == {"cpu": "2", "memory": "3072Mi"} for r in asked
    ), asked
