"""Bucket file mounts on local jobs against moto's S3 server (a real S3 API over HTTP on
loopback, real boto3): COPY downloads before setup; MOUNT is a COPY-style sync on this host
(no FUSE) that writes the job's outputs back when it ends (other stores: tests/storage)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread
from skyd.testing.storage_emulators import moto_s3
from tests.daemon_calls import run_skyctl, wait_ended


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    with moto_s3() as url:
        yield url


@pytest.fixture
def s3(s3_url: str) -> object:
    client = boto3.client(
        "s3",
        endpoint_url=s3_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="lab-data")
    client.put_object(Bucket="lab-data", Key="train/a.txt", Body=b"alpha\n")
    client.put_object(Bucket="lab-data", Key="train/sub/b.txt", Body=b"beta\n")
    client.put_object(Bucket="lab-data", Key="training-other/c.txt", Body=b"not mine\n")
    client.create_bucket(Bucket="lab-out")
    return client


def _run_with_moto_keys(
    daemon: DaemonThread, client: DaemonClient, s3_url: str
) -> tuple[dict[str, object], str]:
    """`skyctl submit t.yaml` with moto's endpoint and keys (the keys as secrets), waited
    until it ends: the job's record and log."""
    code, out, err = run_skyctl(
        daemon.socket_path,
        "submit",
        "t.yaml",
        "--env",
        f"AWS_ENDPOINT_URL={s3_url}",
        "--secret",
        "AWS_ACCESS_KEY_ID=testing",
        "--secret",
        "AWS_SECRET_ACCESS_KEY=testing",
    )
    assert code == 0, err
    job_id = int(out)
    return wait_ended(client, job_id), _log(client, job_id)


def _log(client: DaemonClient, job_id: int) -> str:
    return b"".join(client.job_logs(job_id, follow=False)).decode()


def test_copy_and_mount_buckets_on_a_local_job(
    daemon: DaemonThread,
    client: DaemonClient,
    s3: object,
    s3_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "t.yaml").write_text(
        "file_mounts:\n"
        "  /data: s3://lab-data/train\n"
        "  /out:\n    name: lab-out\n    mode: MOUNT\n"
        "setup: test -s ../mounts/data/a.txt  # fetched before setup\n"
        "run: |\n"
        "  cd ../mounts\n"
        "  cat data/a.txt data/sub/b.txt\n"
        "  test ! -e data/c.txt\n"
        "  echo result > out/model.txt\n"
    )
    monkeypatch.chdir(tmp_path)
    job, log = _run_with_moto_keys(daemon, client, s3_url)
    assert job["state"] == "SUCCEEDED", log
    assert "alpha\nbeta\n" in log
    assert "s3://lab-data/train" in log and "2 objects copied" in log
    assert "written back to s3://lab-out" in log
    body = s3.get_object(Bucket="lab-out", Key="model.txt")["Body"].read()  # type: ignore[attr-defined]
    assert body == b"result\n"
    _code, shown, _ = run_skyctl(daemon.socket_path, "show", str(job["id"]))
    assert "testing" not in shown  # the credentials were secrets


def test_a_missing_bucket_fails_the_job_before_setup_with_the_reason(
    daemon: DaemonThread, client: DaemonClient, s3_url: str, tmp_path: Path
) -> None:
    job = client.submit_task(
        "file_mounts: {/data: 's3://no-such-bucket/x'}\nenvs:\n"
        f"  AWS_ENDPOINT_URL: {s3_url}\n  AWS_ACCESS_KEY_ID: testing\n"
        "  AWS_SECRET_ACCESS_KEY: testing\nsetup: echo setup ran\nrun: echo run ran\n",
        str(tmp_path),
        None,
    )
    ended = wait_ended(client, int(job["id"]))
    log = _log(client, int(job["id"]))
    assert ended["state"] == "FAILED_SETUP"
    assert "could not sync workdir/file_mounts" in log and "NoSuchBucket" in log
    assert "setup ran" not in log


def test_a_named_bucket_is_created_and_filled_from_its_local_source(
    daemon: DaemonThread,
    client: DaemonClient,
    s3: object,
    s3_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "step1.pt").write_text("weights\n")
    (tmp_path / "t.yaml").write_text(
        "envs: {BUCKET: lab-new-ckpts}\n"
        "file_mounts:\n  /ckpt:\n    name: $BUCKET\n    source: ./ckpt\n    mode: MOUNT\n"
        "run: cat ../mounts/ckpt/step1.pt && echo more > ../mounts/ckpt/step2.pt\n"
    )
    monkeypatch.chdir(tmp_path)
    job, log = _run_with_moto_keys(daemon, client, s3_url)
    assert job["state"] == "SUCCEEDED", log
    assert "created bucket s3://lab-new-ckpts" in log and "weights" in log
    listed = s3.list_objects_v2(Bucket="lab-new-ckpts")["Contents"]  # type: ignore[attr-defined]
    assert sorted(item["Key"] for item in listed) == ["step1.pt", "step2.pt"]
