"""Bucket data moved by jobs on cloud VMs (fake Compute Engine and EC2, the VMs real sshd's on
loopback; the buckets on moto's S3 server; the node's real rclone) is charged as data
transfer: the bytes rclone says it copied, at the egress table's rate from where the data
left to where it went, once per attempt, mount and direction, across a daemon restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from skyctl.client import DaemonClient
from skyd.accounting.transfers import transfer_micros
from skyd.catalog.locate import candidate_dirs
from skyd.config import Settings
from skyd.optimizer.egress import find_egress_table
from skyd.testing.cloud_world import CloudWorld
from skyd.testing.daemon import job_when, settings_for_tests, wait_until
from skyd.testing.storage_emulators import moto_s3, moto_s3_client
from tests.daemon_calls import ENDED, run_skyctl

SECRETS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
OUT_BYTES = 300_001


def _fill(s3: Any, bucket: str, sizes: dict[str, int]) -> int:
    s3.create_bucket(Bucket=bucket)
    for key, size in sizes.items():
        s3.put_object(Bucket=bucket, Key=key, Body=b"d" * size)
    return sum(sizes.values())


def _settings(world: CloudWorld, tmp_path: Path, regions: dict[str, str]) -> Settings:
    settings = world.settings(settings_for_tests(tmp_path))
    settings.data.bucket_regions = regions
    return settings


def _transfers(settings: Settings, job_id: int, what: str = "bucket") -> list[tuple[Any, ...]]:
    """(cloud, region, bytes, per_gb_micros, amount_micros, transfer_key) of the job's
    data-transfer rows of one kind (bucket data; `log`: its log read off the VM), read
    beside the running daemon."""
    conn = sqlite3.connect(f"file:{settings.state_dir / 'skyd.db'}?mode=ro", uri=True)
    try:
        return [
            tuple(r)
            for r in conn.execute(
                "SELECT cloud, region, bytes, per_gb_micros, amount_micros, transfer_key"
                " FROM ledger WHERE kind = 'transfer' AND job_id = ? AND transfer_key LIKE ?"
                " ORDER BY seq",
                (job_id, f"{what}:%"),
            )
        ]
    finally:
        conn.close()


async def _submit(settings: Settings, task: str, tmp_path: Path) -> int:
    with DaemonClient(str(settings.socket_path)) as client:
        job = await asyncio.to_thread(
            client.submit_task, task, str(tmp_path), None, None, {"secrets": SECRETS}
        )
    return int(job["id"])


async def _ended(settings: Settings, job_id: int) -> dict[str, Any]:
    with DaemonClient(str(settings.socket_path)) as client:
        job: dict[str, Any] = await job_when(client, job_id, ENDED, wait_s=90)
    return job


async def test_a_gcp_job_reading_and_writing_s3_is_charged_once_across_a_restart(
    tmp_path: Path,
) -> None:
    table = find_egress_table(candidate_dirs())
    aws_out, gcp_out = table.rates["aws"].internet_micros, table.rates["gcp"].internet_micros
    assert (aws_out, gcp_out) == (90_000, 120_000)  # catalogs/egress.csv
    # the VM's login is not root: the flag lives where it may look (not in 0700 tmp_path)
    shared = Path(tempfile.mkdtemp(prefix="skyd-egress-"))
    shared.chmod(0o755)
    flag = shared / "go-on"
    with moto_s3() as s3_url, contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, shared, ignore_errors=True)
        s3 = moto_s3_client(s3_url)
        read = _fill(s3, "lab-egress-data", {"train/a.bin": 1_500_000, "train/sub/b.bin": 2_345})
        s3.create_bucket(Bucket="lab-egress-out")
        task = f"""\
resources:
  cloud: gcp
  zone: us-central1-a
  instance_type: n2-standard-8
envs:
  AWS_ENDPOINT_URL: {s3_url}
file_mounts:
  ~/data: s3://lab-egress-data/train
  ~/out:
    source: s3://lab-egress-out
    mode: MOUNT
run: |
  cat ~/data/a.bin ~/data/sub/b.bin | wc -c
  head -c {OUT_BYTES} /dev/zero > ~/out/model.bin
  until [ -e {flag} ]; do sleep 0.1; done
"""
        async with CloudWorld(tmp_path / "world", boot_delay_s=0.5) as world:
            regions = {"s3://lab-egress-data": "us-east-1", "s3://lab-egress-out": "us-east-1"}
            settings = _settings(world, tmp_path, regions)
            key = "bucket:{}:1:0:{}:~/{}"
            async with world.daemon(settings):
                job_id = await _submit(settings, task, tmp_path)
                # the copy before setup is charged while the job runs: AWS bills what left S3
                fetched = ("aws", "us-east-1", read, aws_out, transfer_micros(read, aws_out))
                await asyncio.to_thread(
                    wait_until,
                    lambda: [r[:5] for r in _transfers(settings, job_id)] == [fetched],
                    timeout=60,
                    error=lambda: _transfers(settings, job_id),
                )
            # a new daemon reads the node's report again, finds the read charged, and charges
            # the write back (GCP bills what left the VM; out's MOUNT is copied, no FUSE here)
            async with world.daemon(settings):
                flag.touch()
                job = await _ended(settings, job_id)
                # (read before the world stops: its fake EC2 resets moto, S3 with it)
                out = s3.get_object(Bucket="lab-egress-out", Key="model.bin")["Body"].read()
                code, costs, _ = await asyncio.to_thread(
                    run_skyctl, str(settings.socket_path), "costs", "--by", "job", "--json"
                )
        assert job["state"] == "SUCCEEDED", job
        assert len(out) == OUT_BYTES
        written = ("gcp", "us-central1", OUT_BYTES, gcp_out, transfer_micros(OUT_BYTES, gcp_out))
        # once each: the second daemon did not charge the read again
        assert _transfers(settings, job_id) == [
            (*fetched, key.format(job_id, "in", "data")),
            (*written, key.format(job_id, "out", "out")),
        ]
    assert code == 0
    row = next(r for r in json.loads(costs)["rows"] if r["key"] == job_id)
    logs = _transfers(settings, job_id, "log")  # the job's log, read off its VM
    assert row["data_transfer_bytes"] == read + OUT_BYTES + sum(r[2] for r in logs)
    assert row["data_transfer_micros"] == fetched[4] + written[4] + sum(r[4] for r in logs)


async def test_an_aws_job_pays_only_for_the_bucket_in_another_region(tmp_path: Path) -> None:
    with moto_s3() as s3_url:
        s3 = moto_s3_client(s3_url)
        near = _fill(s3, "lab-egress-near", {"x.bin": 700_000})
        far = _fill(s3, "lab-egress-far", {"y.bin": 900_000, "z.bin": 11})
        task = f"""\
resources:
  cloud: aws
  region: us-east-1
  instance_type: c5.large
envs:
  AWS_ENDPOINT_URL: {s3_url}
file_mounts:
  ~/near: s3://lab-egress-near
  ~/far: s3://lab-egress-far
run: cat ~/near/x.bin ~/far/y.bin ~/far/z.bin | wc -c
"""
        async with CloudWorld(tmp_path / "world", boot_delay_s=0.5) as world:
            regions = {"s3://lab-egress-near": "us-east-1", "s3://lab-egress-far": "us-west-2"}
            settings = _settings(world, tmp_path, regions)
            async with world.daemon(settings):
                job_id = await _submit(settings, task, tmp_path)
                job = await _ended(settings, job_id)
        assert job["state"] == "SUCCEEDED", job
    inter = find_egress_table(candidate_dirs()).rates["aws"].inter_region_micros
    assert inter == 20_000
    # us-east-1 to us-east-1 is free: no row; us-west-2 to us-east-1 at the inter-region rate
    assert near > 0 and _transfers(settings, job_id) == [
        (
            "aws",
            "us-west-2",
            far,
            inter,
            transfer_micros(far, inter),
            f"bucket:{job_id}:1:0:in:~/far",
        )
    ]
