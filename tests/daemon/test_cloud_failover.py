"""The core failover loop against a real SDK on a local EC2 endpoint (moto behind a fault
proxy): no capacity in the first zone blocks that zone, the next offering is tried, each
attempt is an event, and nothing is launched twice or left running."""

from __future__ import annotations

import asyncio
from pathlib import Path

from skyd.testing.daemon import run_job
from skyd.testing.ec2_fixtures import settings_on_ec2
from skyd.testing.moto_ec2 import Ec2Fault, MotoEc2

TASK = """\
name: v100-on-aws
resources:
  cloud: aws
  region: us-east-1
  instance_type: p3.2xlarge
run: python train.py
"""


async def test_no_capacity_blocks_the_zone_and_the_next_is_tried(
    ec2: MotoEc2, tmp_path: Path
) -> None:
    # EC2 answers a stockout with HTTP 500, which botocore's retry (skyd's one retry
    # mechanism for EC2) tries again: the zone stays out of capacity for all three attempts.
    ec2.add_fault(Ec2Fault("RunInstances", "InsufficientInstanceCapacity", 500, times=3))
    settings = settings_on_ec2(
        tmp_path, ec2, request_timeout_s=10.0, cleanup_timeout_s=0.0, sdk_max_attempts=3
    )
    # no [cloud_ssh] key: the job cannot be started on the VM, so skyd never connects to it
    final = await run_job(settings, TASK, tmp_path, until={"FAILED"}, wait_s=90)
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
