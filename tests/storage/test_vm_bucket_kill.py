"""A job on a cloud VM (a fake Compute Engine, the VM a real sshd on loopback; the buckets on
moto's S3 server; the node's real rclone) that is cancelled still has what it wrote into its
bucket file mount written back, including what it writes on the SIGTERM, and the write-back
is charged once; a write-back that hangs is cut at `cancel_write_back_seconds` and named in
the job's log."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skyctl.client import DaemonClient
from skyd.accounting.transfers import transfer_micros
from skyd.catalog.locate import candidate_dirs
from skyd.config import Settings
from skyd.optimizer.egress import find_egress_table
from skyd.testing.cloud_world import CloudWorld
from skyd.testing.daemon import job_log, job_when, settings_for_tests, wait_until
from skyd.testing.storage_emulators import moto_s3, moto_s3_client, quiet_relay
from tests.storage.vm_job import gcp_mount_task, write_back_rows

SECRETS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
OUT_BYTES = 200_003


async def _cancel_when_ready(
    settings: Settings, task: str, tmp_path: Path, before: Callable[[], None] = lambda: None
) -> tuple[DaemonClient, int, float]:
    """Submit `task`, cancel it once its log says `ready` (`before` just before); (client,
    job id, when it was cancelled)."""
    client = DaemonClient(str(settings.socket_path))
    job = await asyncio.to_thread(
        client.submit_task, task, str(tmp_path), None, None, {"secrets": SECRETS}
    )
    job_id = int(job["id"])
    await job_when(client, job_id, {"RUNNING"}, wait_s=90)
    for _ in range(1200):  # the job's SIGTERM trap is set once it says so
        if "ready" in await job_log(client, job_id):
            break
        await asyncio.sleep(0.1)
    before()
    cancelled_at = time.monotonic()
    await asyncio.to_thread(client.cancel_job, job_id)
    return client, job_id, cancelled_at


async def _cancelled(client: DaemonClient, job_id: int) -> dict[str, Any]:
    job = await job_when(client, job_id, {"CANCELLED", "FAILED", "SUCCEEDED"}, wait_s=120)
    assert job["state"] == "CANCELLED", job
    return job


async def test_a_cancelled_jobs_output_and_what_it_saves_on_sigterm_reach_the_bucket_once(
    tmp_path: Path,
) -> None:
    gcp_out = find_egress_table(candidate_dirs()).rates["gcp"].internet_micros
    run = f"""\
head -c {OUT_BYTES} /dev/zero > ~/out/model.bin
trap 'echo saved-on-term > ~/out/on-term.txt; exit 0' TERM
echo ready
while :; do sleep 0.1; done"""
    with moto_s3() as s3_url:
        s3 = moto_s3_client(s3_url)
        s3.create_bucket(Bucket="lab-kill-out")
        async with CloudWorld(tmp_path / "world", boot_delay_s=0.5) as world:
            settings = world.settings(settings_for_tests(tmp_path))
            settings.data.bucket_regions = {"s3://lab-kill-out": "us-east-1"}
            async with world.daemon(settings):
                task = gcp_mount_task(s3_url, "lab-kill-out", run)
                client, job_id, _ = await _cancel_when_ready(settings, task, tmp_path)
                with client:
                    await _cancelled(client, job_id)
                    log = await job_log(client, job_id)
                # (read before the world stops: its fake EC2 resets moto, S3 with it)
                model = s3.get_object(Bucket="lab-kill-out", Key="model.bin")["Body"].read()
                saved = s3.get_object(Bucket="lab-kill-out", Key="on-term.txt")["Body"].read()
                # the write-back is charged as the attempt is given back: once
                await asyncio.to_thread(
                    wait_until, lambda: write_back_rows(settings.state_dir, job_id), timeout=30
                )
                rows = write_back_rows(settings.state_dir, job_id)
    assert len(model) == OUT_BYTES, log
    assert saved == b"saved-on-term\n"
    nbytes = OUT_BYTES + len(saved)
    assert rows == [(nbytes, transfer_micros(nbytes, gcp_out), f"bucket:{job_id}:1:0:out:~/out")]
    assert "written back to s3://lab-kill-out" in log
    assert "killed (signal 15)" in log


async def test_a_write_back_that_hangs_is_cut_at_its_allowance_and_logged(
    tmp_path: Path,
) -> None:
    allowance = 3.0
    run = f"head -c {OUT_BYTES} /dev/zero > ~/out/model.bin\necho ready\nsleep 600"
    with moto_s3() as s3_url, quiet_relay(s3_url) as proxy:
        s3 = moto_s3_client(s3_url)
        s3.create_bucket(Bucket="lab-kill-hang")
        async with CloudWorld(tmp_path / "world", boot_delay_s=0.5) as world:
            settings = world.settings(settings_for_tests(tmp_path))
            settings.local.cancel_write_back_seconds = allowance
            async with world.daemon(settings):
                task = gcp_mount_task(proxy.url, "lab-kill-hang", run)
                # the endpoint goes quiet just before the cancel
                hang = lambda: setattr(proxy, "hang", True)  # noqa: E731
                client, job_id, cancelled_at = await _cancel_when_ready(
                    settings, task, tmp_path, hang
                )
                with client:
                    await _cancelled(client, job_id)
                    took = time.monotonic() - cancelled_at
                    log = await job_log(client, job_id)
                listed = s3.list_objects_v2(Bucket="lab-kill-hang").get("KeyCount", 0)
    grace = settings.local.cancel_grace_seconds
    # the job stops at once on its SIGTERM; the write-back waits its allowance, not
    # rclone's own five-minute timeout (the SSH call's bound: grace + allowance + 10 s)
    assert allowance <= took < grace + allowance + 10.0, (took, log)
    assert "not written back: s3://lab-kill-hang" in log, log
    assert "killed (signal 15)" in log
    assert listed == 0
