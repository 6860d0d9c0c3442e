"""A 2-node job on a fake cloud end to end: one launch request for both VMs in the offer's
zone, each VM a real sshd, both placed close together by the cloud's own means (an EC2
cluster placement group, a GCE compact placement policy, an Azure proximity placement
group); each rank runs with its own rank and both VMs' private addresses, rank 1's output
comes back with ?node=1, and both VMs are terminated with their placement group."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from skyctl.client import DaemonClient
from skyd.catalog import Catalog
from skyd.daemon import Daemon
from skyd.testing.cloud_world import CloudWorld
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until

PINS = {
    "aws": "cloud: aws\n  region: us-east-1\n  instance_type: c5.large",
    "gcp": "cloud: gcp\n  zone: us-central1-a\n  instance_type: n2-standard-8",
    "azure": "cloud: azure\n  region: eastus\n  instance_type: Standard_D4s_v5",
}


def task(cloud: str) -> str:
    return f"""\
name: gang-on-{cloud}
num_nodes: 2
resources:
  {PINS[cloud]}
setup: echo "setup-on-$SKYPILOT_NODE_RANK"
run: |
  ips=$(echo "$SKYPILOT_NODE_IPS" | paste -sd,)
  echo "rank=$SKYPILOT_NODE_RANK n=$SKYPILOT_NUM_NODES ips=$ips"
"""


@pytest.mark.parametrize("cloud", sorted(PINS))
async def test_a_two_node_job_runs_a_rank_on_each_vm(tmp_path: Path, cloud: str) -> None:
    world = CloudWorld(tmp_path / "world", boot_delay_s=0.5)
    await world.start()
    try:
        settings = world.settings(settings_for_tests(tmp_path))
        providers = world.providers(Catalog.load(settings.catalog_dir))
        daemon = DaemonThread(settings)
        daemon.daemon = Daemon(settings, providers=providers)
        await asyncio.to_thread(daemon.start)
        try:
            with DaemonClient(daemon.socket_path) as client:
                job = await asyncio.to_thread(client.submit_task, task(cloud), str(tmp_path), None)
                job_id = int(job["id"])
                final = await asyncio.to_thread(
                    wait_until,
                    lambda: (
                        j
                        if (j := client.get_job(job_id))["state"]
                        in ("SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED")
                        else None
                    ),
                    timeout=120,
                    error=lambda: client.get_job(job_id),
                )

                def log(node: int) -> str:
                    chunks = client.job_logs(job_id, follow=False, node=node)
                    return b"".join(chunks).decode()

                head, other = await asyncio.to_thread(log, 0), await asyncio.to_thread(log, 1)
                # the job's outcome commits before its VMs are given back: wait for those too
                await asyncio.to_thread(
                    wait_until,
                    lambda: not world.machines.running() and not placement_of(world, cloud)[1],
                    timeout=60,
                    error=lambda: (world.machines.running(), placement_of(world, cloud)),
                )
        finally:
            await asyncio.to_thread(daemon.stop)
        running = world.machines.running()
        placed, groups_left = placement_of(world, cloud)
    finally:
        await world.stop()
    assert final["state"] == "SUCCEEDED", (final["reason"], head, other)
    launched = next(e for e in final["events"] if (e.get("data") or {}).get("instances"))
    assert len(launched["data"]["instances"]) == 2, launched
    # (a set: the SSH runner may repeat a log chunk once after an interrupted copy)
    [ips0] = {line.split("ips=")[1] for line in head.splitlines() if line.startswith("rank=0")}
    [ips1] = {line.split("ips=")[1] for line in other.splitlines() if line.startswith("rank=1")}
    assert ips0 == ips1 and len(set(ips0.split(","))) == 2, (head, other)
    assert "rank=0 n=2" in head and "setup-on-0" in head
    assert "rank=1 n=2" in other and "setup-on-1" in other
    assert running == []  # both VMs were terminated
    # both VMs went into one placement group of the gang's own, which went with them
    assert len(placed) == 2 and len({group for group, _ in placed}) == 1, placed
    assert {vm for _, vm in placed} == {i.rsplit("/", 1)[-1] for i in launched["data"]["instances"]}
    assert groups_left == [], groups_left
    # the launch event says how the gang was placed
    [group] = {group for group, _ in placed}
    assert group in launched["data"]["placement"] and group in launched["reason"], launched


def placement_of(world: CloudWorld, cloud: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(group, VM) pairs the fake cloud placed, and the placement groups it still holds."""
    if cloud == "aws":
        groups = world.ec2.placement_groups
        return list(groups.placed), [name for _, name in list(groups.groups)]
    if cloud == "gcp":
        policies = world.gce.policies
        return list(policies.placed), [name for *_, name in list(policies.policies)]
    ppgs = world.azure.placement
    return list(ppgs.placed), [name for _, name in list(ppgs.groups)]
