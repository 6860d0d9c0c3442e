"""A launch the cloud refuses fails the job once with the cloud's message and the fix; an
error no adapter maps fails it after a capped number of tries (never requeued forever)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from skyctl.client import DaemonClient
from skyd.scheduler.launching import UNKNOWN_ERROR_TRIES
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until
from skyd.testing.moto_ec2 import Ec2Fault, MotoEc2, MotoServerThread

TASK = """\
name: cpu-on-aws
resources:
  cloud: aws
  region: us-east-1
  instance_type: m5.large
run: echo hi
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


async def _run_to_failure(ec2: MotoEc2, tmp_path: Path) -> dict[str, Any]:
    settings = settings_for_tests(tmp_path)
    settings.aws = {
        "enabled": True,
        "regions": ["us-east-1"],
        "endpoint_url": ec2.endpoint_url,
        "default_image_id": "ami-12c6146b",
        "cleanup_timeout_s": 0.0,
    }
    settings.market.poll_aws_spot_prices = False
    daemon = DaemonThread(settings)
    await asyncio.to_thread(daemon.start)
    try:
        with DaemonClient(daemon.socket_path) as client:
            job = await asyncio.to_thread(client.submit_task, TASK, str(tmp_path), None)
            job_id = int(job["id"])
            final: dict[str, Any] = await asyncio.to_thread(
                wait_until,
                lambda: (j := client.get_job(job_id))["state"] == "FAILED" and j,
                timeout=90,
            )
    finally:
        await asyncio.to_thread(daemon.stop)
    return final


async def test_a_refused_image_fails_the_job_once_with_the_fix(
    ec2: MotoEc2, tmp_path: Path
) -> None:
    ec2.add_fault(
        Ec2Fault(
            "RunInstances",
            "InvalidAMIID.NotFound",
            400,
            message="The image id '[ami-12c6146b]' does not exist",
            times=None,
        )
    )
    final = await _run_to_failure(ec2, tmp_path)
    assert "InvalidAMIID.NotFound" in final["reason"]
    assert "fix: set aws.image_ids[REGION]" in final["reason"]
    assert ec2.calls["RunInstances"] == 1  # once: not retried, not requeued


async def test_an_unmapped_error_fails_after_a_capped_number_of_tries(
    ec2: MotoEc2, tmp_path: Path
) -> None:
    ec2.add_fault(Ec2Fault("RunInstances", "BrandNewRefusal", 400, times=None))
    final = await _run_to_failure(ec2, tmp_path)
    assert "BrandNewRefusal" in final["reason"] and "no mapping" in final["reason"]
    failed = [e for e in final["events"] if e["kind"] == "launch_failed"]
    assert len(failed) == UNKNOWN_ERROR_TRIES
    assert ec2.calls["RunInstances"] == UNKNOWN_ERROR_TRIES
