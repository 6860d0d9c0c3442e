"""Local jobs read and write gs://, Azure Blob (az:// and https://ACCOUNT.blob.core.windows.net)
and r2:// buckets through the clouds' own SDK clients against real emulators on loopback:
gcp-storage-emulator, Azurite, and moto's S3 server standing in for R2's S3 endpoint.
COPY downloads before setup; MOUNT (no FUSE on this host) is written back when the job ends;
a bucket skyd creates is tagged as skyd's and, with `persistent: false`, deleted at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from skyctl.client import DaemonClient
from skyd.testing.storage_emulators import AZURITE_ACCOUNT, Azurite, azurite, gcs_emulator, moto_s3
from tests.daemon_calls import wait_ended


@pytest.fixture(scope="module")
def gcs_host() -> Iterator[str]:
    with gcs_emulator() as host:
        yield host


@pytest.fixture(scope="module")
def blob() -> Iterator[Azurite]:
    with azurite() as running:
        yield running


@pytest.fixture(scope="module")
def r2_url() -> Iterator[str]:
    with moto_s3() as url:
        yield url


def _gcs(host: str) -> Any:
    # google-cloud-storage ships no type information (mypy does not see the namespace
    # package's storage module), and google-auth leaves AnonymousCredentials unannotated
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage  # type: ignore[attr-defined]

    return storage.Client(
        project="lab",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": host},
    )


def _blob_service(running: Azurite) -> Any:
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(running.connection_string)


def _run(
    client: DaemonClient, task: str, cwd: Path, secrets: dict[str, str] | None = None
) -> tuple[dict[str, Any], str]:
    """Submit `task` (with `secrets`), wait until it ends: the job and its log."""
    overrides = {"secrets": secrets} if secrets is not None else None
    job = client.submit_task(task, str(cwd), None, overrides=overrides)
    ended = wait_ended(client, int(job["id"]), timeout=90)
    log = b"".join(client.job_logs(int(job["id"]), follow=False)).decode()
    return ended, log


RUN = (
    "setup: test -s ../mounts/data/a.txt  # fetched before setup\n"
    "run: |\n"
    "  cd ../mounts\n"
    "  cat data/a.txt data/sub/b.txt\n"
    "  test ! -e data/c.txt\n"
    "  echo result > out/model.txt\n"
)


def test_gcs_copy_and_mount_with_google_cloud_storage(
    client: DaemonClient, gcs_host: str, tmp_path: Path
) -> None:
    gcs = _gcs(gcs_host)
    data = gcs.create_bucket("lab-gcs-data")
    data.blob("train/a.txt").upload_from_string(b"alpha\n")
    data.blob("train/sub/b.txt").upload_from_string(b"beta\n")
    data.blob("training-other/c.txt").upload_from_string(b"not mine\n")
    gcs.create_bucket("lab-gcs-out")
    task = (
        f"envs: {{STORAGE_EMULATOR_HOST: '{gcs_host}'}}\n"
        "file_mounts:\n  /data: gs://lab-gcs-data/train\n"
        "  /out:\n    source: gs://lab-gcs-out\n    mode: MOUNT\n" + RUN
    )
    job, log = _run(client, task, tmp_path)
    assert job["state"] == "SUCCEEDED", log
    assert "alpha\nbeta\n" in log and "gs://lab-gcs-data/train" in log
    assert "2 objects copied" in log
    out = gcs.bucket("lab-gcs-out").blob("model.txt").download_as_bytes()
    assert out == b"result\n"


@pytest.mark.parametrize("style", ["az", "https"])
def test_azure_blob_copy_and_mount_against_azurite(
    client: DaemonClient, blob: Azurite, tmp_path: Path, style: str
) -> None:
    service = _blob_service(blob)
    data = service.create_container(f"data-{style}")
    data.upload_blob("train/a.txt", b"alpha\n")
    data.upload_blob("train/sub/b.txt", b"beta\n")
    data.upload_blob("training-other/c.txt", b"not mine\n")
    service.create_container(f"out-{style}")
    account = AZURITE_ACCOUNT
    url = (
        f"az://{account}/data-{style}/train"
        if style == "az"
        else f"https://{account}.blob.core.windows.net/data-{style}/train"
    )
    task = (
        "file_mounts:\n"
        f"  /data: {url}\n"
        f"  /out:\n    source: az://{account}/out-{style}\n    mode: MOUNT\n" + RUN
    )
    # the connection string holds the account key: a secret, as a user would pass it
    ended, log = _run(
        client, task, tmp_path, secrets={"AZURE_STORAGE_CONNECTION_STRING": blob.connection_string}
    )
    assert ended["state"] == "SUCCEEDED", log
    assert "alpha\nbeta\n" in log and "2 objects copied" in log
    got = service.get_container_client(f"out-{style}").download_blob("model.txt").readall()
    assert got == b"result\n"


def test_r2_through_an_s3_compatible_endpoint(
    client: DaemonClient, r2_url: str, tmp_path: Path
) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=r2_url,
        aws_access_key_id="r2key",
        aws_secret_access_key="r2secret",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket="lab-r2")
    s3.put_object(Bucket="lab-r2", Key="train/a.txt", Body=b"alpha\n")
    s3.put_object(Bucket="lab-r2", Key="train/sub/b.txt", Body=b"beta\n")
    s3.create_bucket(Bucket="lab-r2-out")
    task = (
        f"envs: {{R2_ENDPOINT_URL: '{r2_url}', R2_ACCESS_KEY_ID: r2key}}\n"
        "file_mounts:\n  /data: r2://lab-r2/train\n"
        "  /out:\n    source: r2://lab-r2-out\n    mode: MOUNT\n" + RUN
    )
    ended, log = _run(client, task, tmp_path, secrets={"R2_SECRET_ACCESS_KEY": "r2secret"})
    assert ended["state"] == "SUCCEEDED", log
    assert "r2://lab-r2/train" in log and "2 objects copied" in log
    assert s3.get_object(Bucket="lab-r2-out", Key="model.txt")["Body"].read() == b"result\n"


def test_r2_without_an_account_fails_before_setup_naming_the_fix(
    client: DaemonClient, tmp_path: Path
) -> None:
    job, log = _run(
        client, "file_mounts: {/d: 'r2://x/y'}\nsetup: echo setup ran\nrun: ls\n", tmp_path
    )
    assert job["state"] == "FAILED_SETUP"
    assert "CLOUDFLARE_ACCOUNT_ID" in log and "setup ran" not in log


def test_created_buckets_are_tagged_and_ephemeral_ones_deleted_at_the_end(
    client: DaemonClient, gcs_host: str, blob: Azurite, tmp_path: Path
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "in.txt").write_text("uploaded\n")
    task = (
        f"envs: {{STORAGE_EMULATOR_HOST: '{gcs_host}'}}\n"
        "file_mounts:\n"
        "  /keep:\n    name: lab-keep-gcs\n    store: gcs\n    source: ./src\n"
        "  /scratch:\n    name: lab-scratch-gcs\n    store: gcs\n    persistent: false\n"
        "  /az:\n    name: lab-keep-az\n    store: azure\n"
        "run: |\n  cat ../mounts/keep/in.txt\n"
        "  echo tmp > ../mounts/scratch/t && echo a > ../mounts/az/a\n"
    )
    ended, log = _run(
        client, task, tmp_path, secrets={"AZURE_STORAGE_CONNECTION_STRING": blob.connection_string}
    )
    assert ended["state"] == "SUCCEEDED", log
    gcs = _gcs(gcs_host)
    kept = gcs.get_bucket("lab-keep-gcs")
    assert kept.labels["skyd-managed"] == "1" and kept.labels["skyd-persistent"] == "true"
    assert kept.labels["skyd-job"] == str(ended["id"])
    assert "deleted non-persistent bucket gs://lab-scratch-gcs" in log
    assert gcs.lookup_bucket("lab-scratch-gcs") is None
    meta = _blob_service(blob).get_container_client("lab-keep-az").get_container_properties()
    assert meta.metadata["skyd_managed"] == "1"
