"""A killed attempt's FUSE bucket mount (MOUNT_CACHED: rclone uploads in the background) on a
machine reached over SSH (the fake machine is this host, where /dev/fuse works; the bucket
on moto's S3 server; real rclone): the mount is not stopped by the kill's SIGTERM, the
wrapper flushes and unmounts it after the job stops, and what the job wrote, also on the
SIGTERM, is in the bucket and metered for the daemon to charge."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from skyd.model import RunPhase
from skyd.runner import bucket_traffic
from skyd.runner import remote_buckets as rb
from skyd.runner.ssh import SshRunner
from skyd.testing.ssh_server import FakeSshServer
from skyd.testing.storage_emulators import moto_s3
from tests.ssh.ssh_helpers import ProviderFactory
from tests.ssh.test_ssh_runner import command, nodes_on

MODEL_BYTES = 7_777
RUN = f"""\
head -c {MODEL_BYTES} /dev/zero > ~/out/model.bin
trap 'echo saved-on-term > ~/out/on-term.txt; exit 0' TERM
echo ready
while :; do sleep 0.1; done
"""


@pytest.fixture
def s3() -> Iterator[tuple[str, Any]]:
    with moto_s3() as url:
        client = boto3.client(
            "s3",
            endpoint_url=url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket="lab-fuse-kill")
        yield url, client


async def test_a_killed_jobs_cached_mount_is_flushed_written_back_and_metered(
    tmp_path: Path,
    box_a: FakeSshServer,
    make_provider: ProviderFactory,
    runner: SshRunner,
    s3: tuple[str, Any],
) -> None:
    assert rb.fuse_problem() == "", "this test needs a usable /dev/fuse and fusermount3"
    url, client = s3
    mount = {"store": "s3", "bucket": "lab-fuse-kill", "url": "s3://lab-fuse-kill"}
    mount |= {"dest": "~/out", "mode": "MOUNT_CACHED"}
    env = {"SKYD_JOB_ID": "7", "AWS_ACCESS_KEY_ID": "testing"}
    env |= {"AWS_SECRET_ACCESS_KEY": "testing", "AWS_ENDPOINT_URL": url}
    nodes = await nodes_on(make_provider, box_a)
    attempt = tmp_path / "a"
    job = command(tmp_path, run=RUN, env=env, storage_mounts=[mount])
    await runner.start(attempt, job, nodes)
    for _ in range(600):  # the SIGTERM trap is set once the job says so
        status = await runner.status(attempt)
        if "ready" in job.log_path.read_text() or status.phase == RunPhase.DONE:
            break
        await asyncio.sleep(0.1)
    mounts = (await asyncio.to_thread(job.log_path.read_text)).splitlines()
    assert any("FUSE mount (rclone mount, --vfs-cache-mode full)" in m for m in mounts), mounts
    await runner.kill(attempt, grace_seconds=2.0)
    assert (await runner.status(attempt)).phase == RunPhase.KILLED
    model = client.get_object(Bucket="lab-fuse-kill", Key="model.bin")["Body"].read()
    saved = client.get_object(Bucket="lab-fuse-kill", Key="on-term.txt")["Body"].read()
    assert (len(model), saved) == (MODEL_BYTES, b"saved-on-term\n")
    # the node's report, kept beside the attempt by the kill's last status read
    written = [t for t in bucket_traffic.read_remote(attempt) if t.direction == "out"]
    assert [(t.dest, t.nbytes) for t in written] == [("~/out", MODEL_BYTES + len(saved))]
    log = job.log_path.read_text()
    assert "killed (signal 15)" in log
