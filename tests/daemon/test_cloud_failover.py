"""The core failover loop against a real SDK on a local EC2 endpoint (moto behind a fault
proxy): no capacity in the first zone blocks that zone, the next offering is tried, each
attempt is an event, and nothing is launched twice or left running."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until
from skyd.testing.moto_ec2 import Ec2Fault, MotoEc2, MotoServerThread

TASK = """\
name: v100-on-aws
resources:
  cloud: aws
  region: us-east-1
  instance_type: p3.2xlarge
run: python train.py
"""


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServerThread]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        server = MotoServerThread()
        server.start()
        yield server
        server.stop()


@pytest.fixture
async def ec2(
    moto_server: MotoServerThread, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[MotoEc2]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    moto_server.reset()
    proxy = MotoEc2(moto_server)
    await proxy.start()
    yield proxy
    await proxy.stop()


async def test_no_capacity_blocks_the_zone_and_the_next_is_tried(
    ec2: MotoEc2, tmp_path: Path
) -> None:
    # EC2 answers a stockout with HTTP 500, which botocore's retry (skyd's one retry
    # mechanism for EC2) tries again: the zone stays out of capacity for all three attempts.
    ec2.add_fault(Ec2Fault("RunInstances", "InsufficientInstanceCapacity", 500, times=3))
    settings = settings_for_tests(tmp_path)
    settings.aws = {
        "enabled": True,
        "regions": ["us-east-1"],
        "endpoint_url": ec2.endpoint_url,
        "default_image_id": "ami-12c6146b",
        "request_timeout_s": 10.0,
        "cleanup_timeout_s": 0.0,
        "sdk_max_attempts": 3,
    }
    # no [cloud_ssh] key: the job cannot be started on the VM, so skyd never connects to it
    settings.market.poll_aws_spot_prices = False
    daemon = DaemonThread(settings)
    await asyncio.to_thread(daemon.start)
    try:
        with DaemonClient(daemon.socket_path) as client:
            job = await asyncio.to_thread(client.submit_task, TASK, str(tmp_path), None)
            job_id = int(job["id"])
            final = await asyncio.to_thread(
                wait_until,
                lambda: (j := client.get_job(job_id))["state"] == "FAILED" and j,
                timeout=90,
            )
    finally:
        await asyncio.to_thread(daemon.stop)
    events = final["events"]
    failed = [e for e in events if e["kind"] == "launch_failed"]
    assert len(failed) == 1 and failed[0]["data"]["error"] == "no_capacity"
    blocked_zone = failed[0]["data"]["scope"]
    assert blocked_zone.startswith("aws/us-east-1/use1-az")
    placements = [e["data"]["placement"] for e in events if e["state"] == "PROVISIONING"]
    assert len(placements) == 2
    assert f"aws/us-east-1/{placements[1]['zone']}" != blocked_zone  # the next zone
    assert "[cloud_ssh] key_path" in final["reason"]
    # one refused (three tries), one launched: nothing doubled
    assert ec2.calls["RunInstances"] == 4
    assert ec2.calls["TerminateInstances"] >= 1  # and the VM was given back
    states = await asyncio.to_thread(_instance_states, ec2.endpoint_url)
    assert states and all(s in ("shutting-down", "terminated") for s in states), states


def _instance_states(endpoint_url: str) -> list[str]:
    import boto3

    client = boto3.client("ec2", region_name="us-east-1", endpoint_url=endpoint_url)
    reservations = client.describe_instances()["Reservations"]
    return [i["State"]["Name"] for r in reservations for i in r["Instances"]]
