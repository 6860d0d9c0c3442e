"""A job run as plain processes on this host (skyd.runner.buckets, boto3 against moto's S3
server) reads a bucket: AWS bills the bytes leaving S3 for a host outside it at its internet
rate, charged once; what the job writes back from here leaves no cloud, so costs nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import boto3

from skyctl.client import DaemonClient
from skyd.accounting.transfers import transfer_micros
from skyd.testing.daemon import DaemonThread, settings_for_tests
from skyd.testing.storage_emulators import moto_s3
from tests.daemon_calls import wait_ended


def _ledger(state_dir: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{state_dir / 'skyd.db'}?mode=ro", uri=True)
    try:
        return [
            tuple(r)
            for r in conn.execute(
                "SELECT provider, cloud, region, bytes, per_gb_micros, amount_micros,"
                " transfer_key FROM ledger WHERE kind = 'transfer'"
            )
        ]
    finally:
        conn.close()


def test_a_local_job_reading_s3_is_charged_what_left_aws(tmp_path: Path) -> None:
    with moto_s3() as url:
        s3 = boto3.client(
            "s3",
            endpoint_url=url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="lab-local-data")
        sizes = {"train/a.bin": 2_000_003, "train/sub/b.bin": 17}
        for key, size in sizes.items():
            s3.put_object(Bucket="lab-local-data", Key=key, Body=b"x" * size)
        s3.create_bucket(Bucket="lab-local-out")
        settings = settings_for_tests(tmp_path)
        settings.data.bucket_regions = {"s3://lab-local-data": "us-east-1"}
        task = (
            f"envs: {{AWS_ENDPOINT_URL: '{url}'}}\n"
            "file_mounts:\n  /data: s3://lab-local-data/train\n"
            "  /out:\n    source: s3://lab-local-out\n    mode: MOUNT\n"
            "run: |\n  cat ../mounts/data/a.bin | wc -c\n"
            "  head -c 5000 /dev/zero > ../mounts/out/model.bin\n"
        )
        secrets = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        daemon = DaemonThread(settings).start()
        try:
            with DaemonClient(daemon.socket_path) as client:
                job = client.submit_task(task, str(tmp_path), None, overrides={"secrets": secrets})
                ended = wait_ended(client, int(job["id"]), timeout=60)
                out = s3.get_object(Bucket="lab-local-out", Key="model.bin")["Body"].read()
        finally:
            assert daemon.stop() == 0
    assert ended["state"] == "SUCCEEDED", ended
    assert len(out) == 5000  # written back, and free: a lab's host bills nothing
    read = sum(sizes.values())
    key = f"bucket:{job['id']}:1:0:in:/data"
    assert _ledger(settings.state_dir) == [
        ("local", "aws", "us-east-1", read, 90_000, transfer_micros(read, 90_000), key)
    ]
