"""`resources.ports` and `disk_tier` through the daemon on each fake cloud: the ports are open
while the job runs (an EC2 security group's ingress rules, a GCE firewall rule on the
instances' network tag, the VM's Azure NSG rules), `skyctl show` lists them with the
endpoints and the disk the tier chose, and they are closed again when the job ends; a
port rule left behind by a daemon killed between its two deletes is swept by reconcile."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import boto3
import pytest

from skyctl.client import DaemonClient
from skyd.catalog import Catalog
from skyd.clock import SystemClock
from skyd.model import Instance, LaunchRequest
from skyd.providers.base import job_tags
from skyd.scheduler.reconcile import reconcile
from skyd.store.db import open_store
from skyd.testing.cloud_world import AZURE_GROUP, GCP_PROJECT, CloudWorld
from skyd.testing.daemon import settings_for_tests, wait_until

# VMs boot and jobs run for real: on a machine shared by many test runs this is slow
pytestmark = pytest.mark.timeout(300)
TERMINAL = ("SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED")
PINS = {
    "aws": "cloud: aws\n  region: us-east-1\n  instance_type: c5.large",
    "gcp": "cloud: gcp\n  zone: us-central1-a\n  instance_type: n2-standard-8",
    "azure": "cloud: azure\n  region: eastus\n  instance_type: Standard_D4s_v5",
}
DISKS = {"aws": "EBS gp3 (iops 6000, throughput 500)", "gcp": "pd-ssd", "azure": "Premium_LRS"}


def task(cloud: str) -> str:
    return f"""\
name: serve-on-{cloud}
resources:
  {PINS[cloud]}
  ports: [8080, "9000-9001"]
  disk_tier: high
run: echo serving; sleep 600
"""


def aws_open(world: CloudWorld, job_id: int) -> list[tuple[int, int, str]]:
    client = boto3.client("ec2", region_name="us-east-1", endpoint_url=world.ec2.endpoint_url)
    groups = client.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [f"skyd-job-{job_id}"]}]
    )["SecurityGroups"]
    return sorted(
        (p["FromPort"], p["ToPort"], r["CidrIp"])
        for g in groups
        for p in g["IpPermissions"]
        if p.get("IpProtocol") == "tcp" and p.get("FromPort") != 22
        for r in p.get("IpRanges", [])
    )


def aws_volume(world: CloudWorld) -> dict[str, Any]:
    client = boto3.client("ec2", region_name="us-east-1", endpoint_url=world.ec2.endpoint_url)
    volumes = client.describe_volumes()["Volumes"]
    live = [v for v in volumes if v.get("Attachments")]
    return dict(live[-1]) if live else {}


def gcp_rules(world: CloudWorld) -> list[dict[str, Any]]:
    return [r for (p, _), r in world.gce.firewalls.rules.items() if p == GCP_PROJECT]


def azure_port_rules(world: CloudWorld) -> list[str]:
    return sorted(
        str(rule["properties"]["destinationPortRange"])
        for (group, _), nsg in world.azure.nsgs.items()
        if group == AZURE_GROUP
        for rule in nsg["properties"].get("securityRules", [])
        if rule["name"].startswith("skyd-port-")
    )


async def test_ports_open_while_the_job_runs_and_close_after(tmp_path: Path) -> None:
    world = CloudWorld(tmp_path / "world", boot_delay_s=0.2)
    await world.start()
    try:
        await _each_cloud(world, tmp_path)
    finally:
        await world.stop()


async def _each_cloud(world: CloudWorld, tmp_path: Path) -> None:
    settings = world.settings(settings_for_tests(tmp_path))
    daemon = await world.start_daemon(settings)
    try:
        with DaemonClient(daemon.socket_path) as client:
            for cloud in PINS:
                await _one(world, client, cloud)
    finally:
        await asyncio.to_thread(daemon.stop)


async def _one(world: CloudWorld, client: DaemonClient, cloud: str) -> None:
    job = await asyncio.to_thread(client.submit_task, task(cloud), "/tmp", None)
    job_id = int(job["id"])

    def log() -> str:
        return b"".join(client.job_logs(job_id, follow=False)).decode()

    await asyncio.to_thread(wait_until, lambda: "serving" in log(), timeout=90, error=log)
    shown = (await asyncio.to_thread(client.get_job, job_id))["task"]
    assert shown["ports"] == ["8080", "9000-9001"]
    assert "open to 0.0.0.0/0" in shown["ports_open"], shown
    (endpoint, other) = shown["endpoints"]
    ip = endpoint.rpartition(":")[0]
    world.machines.by_address(ip)  # the VM's own (public) address
    assert (endpoint, other) == (f"{ip}:8080", f"{ip}:9000-9001")
    assert shown["disk"] == DISKS[cloud]
    if cloud == "aws":
        # boto3 blocks: in a thread, so the loop serving the fake EC2 proxy keeps going
        opened = await asyncio.to_thread(aws_open, world, job_id)
        assert opened == [(8080, 8080, "0.0.0.0/0"), (9000, 9001, "0.0.0.0/0")]
        volume = await asyncio.to_thread(aws_volume, world)
        assert (volume["VolumeType"], volume["Size"]) == ("gp3", 256)
        asked = world.ec2.block_devices[-1]  # moto keeps no Iops/Throughput: the request's
        assert asked["BlockDeviceMapping.1.Ebs.Iops"] == "6000"
        assert asked["BlockDeviceMapping.1.Ebs.Throughput"] == "500"
    elif cloud == "gcp":
        (rule,) = gcp_rules(world)
        assert rule["allowed"] == [{"IPProtocol": "tcp", "ports": ["8080", "9000-9001"]}]
        assert rule["sourceRanges"] == ["0.0.0.0/0"]
        (inst,) = [i for i in world.gce.instances.values() if i["status"] == "RUNNING"]
        assert inst["tags"]["items"] == rule["targetTags"]  # the rule reaches these instances
        disk_type = inst["disks"][0]["initializeParams"]["diskType"]
        assert disk_type.endswith("/diskTypes/pd-ssd")
    else:
        assert azure_port_rules(world) == ["8080", "9000-9001"]
        (vm,) = world.azure.vms.values()
        os_disk = vm["properties"]["storageProfile"]["osDisk"]
        assert os_disk["managedDisk"]["storageAccountType"] == "Premium_LRS"
    await asyncio.to_thread(client.cancel_job, job_id)
    final = await asyncio.to_thread(
        wait_until,
        lambda: j if (j := client.get_job(job_id))["state"] in TERMINAL else None,
        timeout=90,
    )
    assert final["state"] == "CANCELLED"
    # closed at teardown: the group, the rule, the NSG are gone with the machines
    await asyncio.to_thread(
        wait_until,
        lambda: not (aws_open(world, job_id) or gcp_rules(world) or azure_port_rules(world)),
        timeout=60,
    )
    assert "closed" in (await asyncio.to_thread(client.get_job, job_id))["task"]["ports_open"]


async def test_reconcile_sweeps_port_rules_whose_machines_are_gone(tmp_path: Path) -> None:
    """A daemon killed after the instances were deleted but before their rule was: the next
    reconcile deletes the rule (and the EC2 group) of its own daemon, not another's."""
    world = CloudWorld(tmp_path / "world", boot_delay_s=0.2)
    await world.start()
    try:
        settings = world.settings(settings_for_tests(tmp_path))
        catalog = Catalog.load(settings.catalog_dir)
        providers = world.providers(catalog)
        gcp, aws, azure = providers["gcp"], providers["aws"], providers["azure"]
        launched: list[tuple[str, list[Instance]]] = []
        for name, provider, key, daemon in (
            ("gcp", gcp, "gcp/us-central1/us-central1-a/n2-standard-8", "me"),
            ("gcp", gcp, "gcp/us-central1/us-central1-a/n2-standard-8", "another-daemon"),
            ("aws", aws, "aws/us-east-1/use1-az1/c5.large", "me"),
            ("azure", azure, "azure/eastus//Standard_D4s_v5", "me"),
        ):
            offer = next(o for o in catalog.offers if o.key == key)
            job_id = len(launched) + 1
            token = f"skyd-{job_id}-1"
            request = LaunchRequest(
                job_id=job_id,
                attempt=1,
                client_token=token,
                offer=offer,
                spot=False,
                tags=job_tags(daemon, job_id, 1, token),
                ports=("8080",),
            )
            launched.append((name, await provider.launch(request)))
        assert len(gcp_rules(world)) == 2
        assert await asyncio.to_thread(aws_open, world, 3)
        assert azure_port_rules(world) == ["8080"]
        # the machines end behind skyd's back, as if it died before deleting their rules
        for name, instances in launched:
            ids = [i.instance_id for i in instances]
            if name == "gcp":
                await gcp._each("delete_unary", ids, missing_ok=True)  # type: ignore[attr-defined]
            elif name == "azure":
                for key in ids:  # the VM only: its NIC, IP and NSG stay, as after a kill
                    group, _, vm_name = key.partition("/")
                    world.azure._drop_vm((group, vm_name))
            else:
                await asyncio.to_thread(
                    ec2_at(world).terminate_instances,
                    InstanceIds=[i.rpartition("/")[2] for i in ids],
                )
        store = open_store(tmp_path / "state")
        report = await reconcile(store, providers, SystemClock(), daemon_id="me")
        aws_left = await asyncio.to_thread(aws_open, world, 3)
        for provider in providers.values():
            await provider.aclose()
    finally:
        await world.stop()
    assert report.errors == {}
    aws_swept, azure_swept, gcp_swept = sorted(report.swept_port_rules)
    assert azure_swept.startswith("azure:") and azure_swept.endswith("-nsg")
    assert azure_port_rules(world) == [] and world.azure.nics == {}
    assert aws_swept.startswith("aws:us-east-1/sg-")
    assert gcp_swept == f"gcp:skyd-1-{_digest('skyd-1-1')}-ports"  # this daemon's only
    assert [r["name"] for r in gcp_rules(world)] == [f"skyd-2-{_digest('skyd-2-1')}-ports"]
    assert aws_left == []


def ec2_at(world: CloudWorld) -> Any:
    return boto3.client("ec2", region_name="us-east-1", endpoint_url=world.ec2.endpoint_url)


def _digest(token: str) -> str:
    from skyd.providers.gcp.labels import instance_names

    return instance_names(0, token, 1)[0].split("-")[2]
