"""kill -9 of the daemon around the charge of a cancelled job's bucket write-back: a real `skyd
run` process (its VM on a fake Compute Engine, a real sshd on loopback; the bucket on moto's
S3 server; the node's real rclone) dies at a test-only crash point (SKYD_TEST_CRASH_AT,
skyd.scheduler.attempts) either once the write-back is done and not charged, or once it is
charged and the attempt not given back. The daemon restarted on the same SQLite file charges
the write-back exactly once at GCP's rate, ends the job, and gives its VM back."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from skyctl.client import DaemonClient
from skyd.accounting.transfers import transfer_micros
from skyd.catalog import Catalog
from skyd.catalog.locate import candidate_dirs
from skyd.model import Instance
from skyd.optimizer.egress import find_egress_table
from skyd.scheduler.attempts import CRASH_AT
from skyd.testing.cloud_world import GCP_PROJECT, CloudWorld
from skyd.testing.daemon import DaemonProcess, job_log, job_when, wait_until
from skyd.testing.storage_emulators import moto_s3, moto_s3_client
from tests.daemon_calls import ENDED
from tests.storage.vm_job import gcp_mount_task, write_back_rows

SECRETS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
BUCKET = "lab-crash-out"
OUT_BYTES = 200_003
RUN = f"""\
head -c {OUT_BYTES} /dev/zero > ~/out/model.bin
trap 'echo saved-on-term > ~/out/on-term.txt; exit 0' TERM
echo ready
while :; do sleep 0.1; done"""


def _daemon(world: CloudWorld, root: Path, crash_at: str | None) -> DaemonProcess:
    """`skyd run` on `root` (state, socket) with gcp against the world's fake Compute Engine."""
    daemon = DaemonProcess(root, env={CRASH_AT: crash_at or ""})  # "": no crash point
    daemon.config.write_text(f"""\
scheduler_tick_seconds = 0.1
shutdown_budget_seconds = 5.0
[local]
gpus = 0
cancel_grace_seconds = 2.0
[market]
poll_aws_spot_prices = false
[data]
bucket_regions = {{ "s3://{BUCKET}" = "us-east-1" }}
[cloud_ssh]
key_path = "{world.key_path}"
port = {world.machines.port}
[gcp]
enabled = true
project = "{GCP_PROJECT}"
endpoint = "{world.gce.endpoint}"
anonymous = true
""")
    return daemon


def _instances(state_dir: Path, job_id: int) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{state_dir / 'skyd.db'}?mode=ro", uri=True)
    try:
        return [
            tuple(r)
            for r in conn.execute(
                "SELECT state, ended_at IS NOT NULL FROM instances WHERE job_id = ?", (job_id,)
            )
        ]
    finally:
        conn.close()


async def _held(world: CloudWorld) -> list[Instance]:
    """The instances the fake clouds still hold for skyd (not terminated)."""
    providers = world.providers(Catalog([]))
    try:
        return await world.held(providers)
    finally:
        for provider in providers.values():
            await provider.aclose()


async def _cancel_and_die(daemon: DaemonProcess, tmp_path: Path, endpoint: str) -> int:
    """Submit the task, cancel it once its SIGTERM trap is set; the cancel is answered at
    once (stored first), and the daemon kills itself at its crash point in the background
    kill. Returns the job's id."""
    with DaemonClient(str(daemon.socket_path)) as client:
        job = await asyncio.to_thread(
            client.submit_task,
            gcp_mount_task(endpoint, BUCKET, RUN),
            str(tmp_path),
            None,
            None,
            {"secrets": SECRETS},
        )
        job_id = int(job["id"])
        await job_when(client, job_id, {"RUNNING"}, wait_s=60)
        for _ in range(600):  # bounded: the trap is set once the job says so
            if "ready" in await job_log(client, job_id):
                break
            await asyncio.sleep(0.1)
        answer = await asyncio.to_thread(client.cancel_job, job_id)
        assert answer["cancel_requested"] is True, answer
    assert daemon.proc is not None
    assert await asyncio.to_thread(daemon.proc.wait, 60) == -signal.SIGKILL
    return job_id


@pytest.mark.parametrize("crash_at", ["release:killed", "release:charged"])
async def test_a_write_back_is_charged_once_when_the_daemon_dies_around_its_charge(
    tmp_path: Path, crash_at: str
) -> None:
    gcp_out = find_egress_table(candidate_dirs()).rates["gcp"].internet_micros
    root = tmp_path / "daemon"
    root.mkdir()
    state_dir = root / "state"
    with moto_s3() as s3_url:
        s3 = moto_s3_client(s3_url)
        s3.create_bucket(Bucket=BUCKET)
        async with CloudWorld(tmp_path / "world", boot_delay_s=0.5) as world:
            first = _daemon(world, root, crash_at)
            second = _daemon(world, root, None)
            try:
                await asyncio.to_thread(first.start)
                job_id = await _cancel_and_die(first, tmp_path, s3_url)
                charged_before = write_back_rows(state_dir, job_id)
                await asyncio.to_thread(second.start)
                with DaemonClient(str(second.socket_path)) as client:
                    job = await job_when(client, job_id, ENDED, wait_s=60)
                    log = await job_log(client, job_id)
                # the VM's end is recorded once the cloud confirmed it
                await asyncio.to_thread(
                    wait_until,
                    lambda: all(ended for _, ended in _instances(state_dir, job_id)),
                    timeout=30,
                    error=lambda: _instances(state_dir, job_id),
                )
                assert second.terminate() == 0
                held = await _held(world)
                # (read before the world stops: its fake EC2 resets moto, S3 with it)
                model = s3.get_object(Bucket=BUCKET, Key="model.bin")["Body"].read()
                saved = s3.get_object(Bucket=BUCKET, Key="on-term.txt")["Body"].read()
            finally:
                first.close()
                second.close()
    nbytes = OUT_BYTES + len(saved)
    row = (nbytes, transfer_micros(nbytes, gcp_out), f"bucket:{job_id}:1:0:out:~/out")
    assert (len(model), saved) == (OUT_BYTES, b"saved-on-term\n")
    # where it died: the write-back's charge committed, or not yet
    died_charged = crash_at == "release:charged"
    assert [r[0] for r in charged_before] == ([nbytes] if died_charged else [])
    # after the restart, once: not lost, not charged again; every byte, at GCP's rate
    rows = write_back_rows(state_dir, job_id)
    assert [r[0] for r in rows] == [nbytes], rows
    assert rows == [row]
    # the cancel was stored before the kill: the restarted daemon finishes it (the job is
    # cancelled, not judged killed by a signal, and never restarted)
    assert (job["state"], job["restarts"]) == ("CANCELLED", 0), job
    assert str(job["reason"]).startswith("cancelled by "), job
    assert "written back to s3://lab-crash-out" in log
    assert held == []
    assert _instances(state_dir, job_id) == [("TERMINATED", 1)]
