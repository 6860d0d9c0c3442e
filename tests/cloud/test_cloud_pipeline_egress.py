"""A pipeline's later stage is placed with the egress of its inputs from where the stage before
actually ran: two pipelines whose second stages are the same task (AWS's c5.2xlarge is the
cheaper of its two choices) run on the fake clouds; the one whose first stage ran on GCP
puts its second stage on GCP, next to the 2 TB it wrote, the other keeps it on AWS. The
placement and `skyctl optimize` say where the inputs come from."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from skyctl.__main__ import main as skyctl
from skyctl.client import DaemonClient
from skyd.testing.cloud_world import CloudWorld
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until

# VMs boot and jobs run for real: on a machine shared by many test runs this is slow
pytestmark = pytest.mark.timeout(300)
TERMINAL = ("SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED")
FIRST = {
    "aws": "{infra: aws/us-east-1, instance_type: c5.large}",
    "gcp": "{infra: gcp/us-central1/us-central1-a, instance_type: n2-standard-8}",
}


def pipeline(first_on: str) -> str:
    return f"""\
name: features-then-train
---
name: features
resources: {FIRST[first_on]}
outputs:
  s3://lab-pipe/features: 2000
run: echo features made
---
name: train
resources:
  any_of:
    - {{infra: aws/us-east-1, instance_type: c5.2xlarge}}
    - {{infra: gcp/us-central1/us-central1-a, instance_type: n2-standard-8}}
estimated_runtime: 1h
inputs:
  s3://lab-pipe/features: 2000
run: echo trained
"""


def skyctl_out(socket: str, *args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = skyctl(["--socket", socket, *args])
    return code, out.getvalue() + err.getvalue()


async def test_the_second_stage_follows_the_data_the_first_wrote(tmp_path: Path) -> None:
    world = CloudWorld(tmp_path / "world", boot_delay_s=0.2)
    await world.start()
    try:
        settings = world.settings(settings_for_tests(tmp_path))
        settings.data.s3_endpoint_url = world.moto.url  # the bucket is looked up, not found
        daemon = await world.start_daemon(settings)
        try:
            finals = {}
            for first_on in ("gcp", "aws"):
                path = tmp_path / f"after-{first_on}.yaml"
                path.write_text(pipeline(first_on))
                finals[first_on] = await asyncio.to_thread(_submit_and_wait, daemon, path)
            code, planned = await asyncio.to_thread(
                skyctl_out, daemon.socket_path, "optimize", str(tmp_path / "after-gcp.yaml")
            )
            code_json, planned_json = await asyncio.to_thread(
                skyctl_out,
                daemon.socket_path,
                "optimize",
                str(tmp_path / "after-gcp.yaml"),
                "--json",
            )
        finally:
            await asyncio.to_thread(daemon.stop)
    finally:
        await world.stop()
    for first_on, (first, second) in finals.items():
        assert first["state"] == "SUCCEEDED", first
        assert second["state"] == "SUCCEEDED", second
        assert first["placement"]["cloud"] == first_on
    after_gcp, after_aws = finals["gcp"][1]["placement"], finals["aws"][1]["placement"]
    # the same task: on AWS when its inputs are there, on GCP (dearer per hour) when the
    # stage before wrote them on GCP — 2 TB would cost $240 to bring to AWS
    assert after_aws["cloud"] == "aws" and after_aws["egress_cost"] == 0
    assert after_gcp["cloud"] == "gcp" and after_gcp["egress_cost"] == 0
    assert after_gcp["inputs_from"] == {
        "stage": 0,
        "job": finals["gcp"][0]["id"],
        "cloud": "gcp",
        "region": "us-central1",
        "gigabytes": 2000.0,
    }
    placed = [e for e in finals["gcp"][1]["events"] if (e.get("data") or {}).get("placement")]
    assert placed and placed[0]["data"]["placement"]["inputs_from"]["cloud"] == "gcp"
    # optimize chains the stages the same way, from where the first would run
    assert code == 0 and code_json == 0, planned
    assert "Data: reads s3://lab-pipe/features (gcp/us-central1), 2000 GB from stage 1" in planned
    stages: list[dict[str, Any]] = json.loads(planned_json)["stages"]
    assert stages[1]["inputs_from"]["cloud"] == "gcp"
    assert stages[1]["chosen"]["cloud"] == "gcp"
    aws_row = min(
        (r for r in stages[1]["candidates"] if r["cloud"] == "aws"),
        key=lambda r: r["expected_cost"],
    )
    assert aws_row["egress_cost"] == 2000 * 0.12  # GCP's internet egress, per catalogs/egress
    assert aws_row["compute_cost"] < stages[1]["chosen"]["compute_cost"]


def _submit_and_wait(daemon: DaemonThread, path: Path) -> tuple[dict[str, Any], ...]:
    code, out = skyctl_out(daemon.socket_path, "submit", str(path))
    assert code == 0, out
    ids = [int(line) for line in out.split()]
    with DaemonClient(daemon.socket_path) as client:

        def ended() -> list[dict[str, Any]] | None:
            jobs = [client.get_job(i) for i in ids]
            return jobs if all(j["state"] in TERMINAL for j in jobs) else None

        return tuple(wait_until(ended, timeout=240))
