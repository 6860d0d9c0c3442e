"""Buckets on a cloud VM end to end (fake Compute Engine, the VM a real sshd on loopback):
the daemon creates the task's named bucket and uploads its local source, the node's
remote_buckets.py copies an s3:// COPY mount (moto), finds FUSE unusable for its login and
syncs a gs:// MOUNT (gcp-storage-emulator) COPY-style, writing it back when the job ends,
purges the non-persistent bucket, and `skyctl show` says per mount how it got there."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import boto3

from skyd.testing.cloud_world import CloudWorld
from skyd.testing.storage_emulators import gcs_emulator, moto_s3
from tests.storage.vm_job import run_task


def _task(s3_url: str, gcs_host: str, data: str) -> str:
    return f"""\
resources:
  cloud: gcp
  zone: us-central1-a
  instance_type: n2-standard-8
envs:
  AWS_ENDPOINT_URL: {s3_url}
  STORAGE_EMULATOR_HOST: {gcs_host}
file_mounts:
  {data}: s3://lab-vm-data/train
  ~/out:
    source: gs://lab-vm-out
    mode: MOUNT
  scratch:
    name: lab-vm-scratch
    source: ./ckpt
    persistent: false
setup: test -s {data}/a.txt
run: |
  cat {data}/a.txt {data}/sub/b.txt
  cat scratch/step1.pt
  echo result > ~/out/model.txt
"""


async def test_buckets_on_a_fake_vm_without_fuse(tmp_path: Path) -> None:
    with moto_s3() as s3_url, gcs_emulator() as gcs_host:
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="lab-vm-data")
        s3.put_object(Bucket="lab-vm-data", Key="train/a.txt", Body=b"alpha\n")
        s3.put_object(Bucket="lab-vm-data", Key="train/sub/b.txt", Body=b"beta\n")
        # google-cloud-storage ships no type information (mypy does not see the namespace
        # package's storage module), and google-auth leaves AnonymousCredentials unannotated
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage  # type: ignore[attr-defined]

        gcs = storage.Client(
            project="lab",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": gcs_host},
        )
        gcs.create_bucket("lab-vm-out")
        (tmp_path / "ckpt").mkdir()
        (tmp_path / "ckpt" / "step1.pt").write_text("weights\n")
        world = CloudWorld(tmp_path / "world", boot_delay_s=0.5)
        shared = Path(tempfile.mkdtemp(prefix="skyd-vm-abs-"))
        await world.start()
        try:
            # an absolute path outside the VM's home is the host's own: one its login may make
            shared.chmod(0o1777)
            data = f"{shared}/data"
            secrets = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
            job, log, shown, text = await run_task(
                world, tmp_path, _task(s3_url, gcs_host, data), secrets
            )
        finally:
            await world.stop()
            shutil.rmtree(shared, ignore_errors=True)
        assert job["state"] == "SUCCEEDED", (job["reason"], log)
        assert "alpha\nbeta\n" in log and "weights" in log
        assert "created bucket s3://lab-vm-scratch" in log
        assert "deleted non-persistent bucket s3://lab-vm-scratch" in log
        names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert "lab-vm-scratch" not in names
        assert gcs.bucket("lab-vm-out").blob("model.txt").download_as_bytes() == b"result\n"
        mounts = shown["task"]["storage_mounts"]
        assert mounts[data]["how"] == "copied before setup"
        # the VM's login is not root and /dev/fuse is root's alone here: say so, per mount
        assert mounts["~/out"]["how"] == (
            "copied before setup (no FUSE: /dev/fuse is not usable by this login); "
            "written back when the job ends"
        )
        # the human view says it too, one line per bucket
        line = next(t for t in text.splitlines() if "bucket ~/out" in t)
        assert "gs://lab-vm-out (MOUNT): copied before setup (no FUSE:" in line, text
        assert world.machines.running() == []
