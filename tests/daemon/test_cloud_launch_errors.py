"""A launch the cloud refuses fails the job once with the cloud's message and the fix; an
error no adapter maps fails it after a capped number of tries (never requeued forever)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skyd.scheduler.launching import UNKNOWN_ERROR_TRIES
from skyd.testing.daemon import run_job
from skyd.testing.ec2_fixtures import settings_on_ec2
from skyd.testing.moto_ec2 import Ec2Fault, MotoEc2

TASK = """\
name: cpu-on-aws
resources:
  cloud: aws
  region: us-east-1
  instance_type: m5.large
run: echo hi
"""


async def _run_to_failure(ec2: MotoEc2, tmp_path: Path) -> dict[str, Any]:
    settings = settings_on_ec2(tmp_path, ec2, cleanup_timeout_s=0.0)
    return await run_job(settings, TASK, tmp_path, until={"FAILED"}, wait_s=90)


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
