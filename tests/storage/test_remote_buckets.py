"""The node side of bucket mounts (skyd/runner/remote_buckets.py): the rclone command lines
and configuration skyd generates for each store, and a real `rclone mount` (FUSE) of a bucket
on moto's S3 server, read and written through the kernel, unmounted and written back."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from skyd.runner import bucket_traffic
from skyd.runner import remote_buckets as rb
from skyd.runner.azure_rclone import rclone_sas_url
from skyd.testing.storage_emulators import AZURITE_ACCOUNT, AZURITE_KEY, azurite, moto_s3


def _mount(**extra: Any) -> dict[str, Any]:
    return {
        "store": "s3",
        "bucket": "lab-data",
        "prefix": "train",
        "url": "s3://lab-data/train",
    } | {
        "target": "/data",
        "mode": "MOUNT",
        **extra,
    }


def test_mount_and_copy_command_lines() -> None:
    env = {"AWS_CA_BUNDLE": "/etc/ca.pem"}
    assert rb.mount_argv(_mount(), 0, env) == [
        "rclone", "mount", "skyd0:lab-data/train", "/data",
        "--vfs-cache-mode", "writes", "--vfs-write-back", "0s", "--dir-cache-time", "10s",
        "--ca-cert", "/etc/ca.pem",
    ]  # fmt: skip
    cached = rb.mount_argv(_mount(mode="MOUNT_CACHED"), 3, {})
    assert cached[:4] == ["rclone", "mount", "skyd3:lab-data/train", "/data"]
    assert cached[4:6] == ["--vfs-cache-mode", "full"]
    assert rb.copy_argv(_mount(), 1, {}) == ["rclone", "copy", "skyd1:lab-data/train", "/data"]
    back = rb.copy_argv(_mount(prefix="w.bin"), 1, {}, back=True, one=True)
    assert back == ["rclone", "copyto", "/data", "skyd1:lab-data/w.bin"]


def test_each_store_is_configured_from_the_jobs_credentials() -> None:
    s3 = rb.rclone_env(
        _mount(),
        0,
        {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT_URL": "http://x"},
    )
    assert s3["RCLONE_CONFIG_SKYD0_TYPE"] == "s3" and s3["RCLONE_CONFIG_SKYD0_PROVIDER"] == "Other"
    assert s3["RCLONE_CONFIG_SKYD0_ENDPOINT"] == "http://x"
    assert s3["RCLONE_CONFIG_SKYD0_ACCESS_KEY_ID"] == "k"
    public = rb.rclone_env(_mount(), 0, {})
    assert public["RCLONE_CONFIG_SKYD0_PROVIDER"] == "AWS"
    assert public["RCLONE_CONFIG_SKYD0_ENV_AUTH"] == "true"
    r2 = rb.rclone_env(
        _mount(store="r2"), 1, {"CLOUDFLARE_ACCOUNT_ID": "acc", "R2_ACCESS_KEY_ID": "rk"}
    )
    assert r2["RCLONE_CONFIG_SKYD1_PROVIDER"] == "Cloudflare"
    assert r2["RCLONE_CONFIG_SKYD1_ENDPOINT"] == "https://acc.r2.cloudflarestorage.com"
    gcs = rb.rclone_env(_mount(store="gcs"), 2, {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:9"})
    assert gcs["RCLONE_CONFIG_SKYD2_TYPE"] == "google cloud storage"
    assert gcs["RCLONE_CONFIG_SKYD2_ENDPOINT"] == "http://127.0.0.1:9/storage/v1/"
    connection = f"DefaultEndpointsProtocol=https;AccountName=labacct;AccountKey={AZURITE_KEY}"
    azure = rb.rclone_env(
        _mount(store="azure", account="labacct"),
        4,
        {"AZURE_STORAGE_CONNECTION_STRING": connection},
    )
    assert azure["RCLONE_CONFIG_SKYD4_ACCOUNT"] == "labacct"
    assert azure["RCLONE_CONFIG_SKYD4_KEY"] == AZURITE_KEY
    managed = rb.rclone_env(_mount(store="azure", account="labacct"), 5, {})
    assert managed["RCLONE_CONFIG_SKYD5_USE_MSI"] == "true"


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
        client.create_bucket(Bucket="lab-fuse")
        client.put_object(Bucket="lab-fuse", Key="train/a.txt", Body=b"alpha\n")
        yield url, client


@pytest.mark.parametrize("mode", ["MOUNT", "MOUNT_CACHED"])
def test_a_real_fuse_mount_with_rclone(s3: tuple[str, Any], tmp_path: Path, mode: str) -> None:
    """This machine (and CI's, as root) has /dev/fuse: the FUSE path runs for real here. What
    the job reads and writes through the mount is metered apart, from the mount's own stats:
    the bytes of the objects read in, of the files written out (for MOUNT_CACHED, once its
    background write-back is done)."""
    assert rb.fuse_problem() == "", "this test needs a usable /dev/fuse and fusermount3"
    url, client = s3
    client.put_object(Bucket="lab-fuse", Key="train/big.bin", Body=b"b" * 54_321)
    client.put_object(Bucket="lab-fuse", Key="train/unread.bin", Body=b"u" * 999)
    target = tmp_path / "mnt"
    mount = {
        "store": "s3",
        "bucket": "lab-fuse",
        "prefix": "train",
        "url": "s3://lab-fuse/train",
        "target": str(target),
        "dest": "/data",
        "mode": mode,
    }
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": url,
    }
    log_path = tmp_path / "job.log"
    log = log_path.open("a")
    try:
        assert rb.fetch([mount], env, str(tmp_path), log) == 0, log_path.read_text()
        assert os.path.ismount(target)
        report = json.loads((tmp_path / "mounts.json").read_text())
        cache = rb.VFS_CACHE[mode]
        assert report["/data"] == f"FUSE mount (rclone mount, --vfs-cache-mode {cache})"
        # listed when mounted, with no byte count until the mount is done
        traffic = json.loads((tmp_path / "bucket-transfers.json").read_text())
        assert [(t["dest"], t["direction"], t["bytes"]) for t in traffic] == [("/data", "in", None)]
        assert (target / "a.txt").read_text() == "alpha\n"  # read through the kernel
        assert (target / "big.bin").read_bytes() == b"b" * 54_321
        (target / "out.txt").write_text("written through FUSE\n")
        (target / "model.bin").write_bytes(b"m" * 7_777)
    finally:
        assert rb.finish([mount], env, str(tmp_path), log) == 0, log_path.read_text()
        log.close()
    assert not os.path.ismount(target)
    body = client.get_object(Bucket="lab-fuse", Key="train/out.txt")["Body"].read()
    assert body == b"written through FUSE\n"
    traffic = json.loads((tmp_path / "bucket-transfers.json").read_text())
    assert [(t["dest"], t["url"], t["direction"], t["bytes"]) for t in traffic] == [
        ("/data", "s3://lab-fuse/train", "in", None),
        ("/data", "s3://lab-fuse/train", "in", len(b"alpha\n") + 54_321),  # not unread.bin
        ("/data", "s3://lab-fuse/train", "out", len(b"written through FUSE\n") + 7_777),
    ]
    # what the daemon reads back to charge (the null entry left out): one read, one write
    charged = bucket_traffic.read_local(tmp_path, 0, "i-1")
    assert [(t.dest, t.direction, t.nbytes) for t in charged] == [
        ("/data", "in", len(b"alpha\n") + 54_321),
        ("/data", "out", len(b"written through FUSE\n") + 7_777),
    ]
    text = log_path.read_text()
    assert "rclone warning: Serving remote control on http://127.0.0.1:" in text
    assert not any(line.startswith("{") for line in text.splitlines()), text


def test_copies_report_the_bytes_rclone_moved(
    s3: tuple[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A COPY mount and a MOUNT without FUSE (copied, then written back): the attempt's
    bucket-transfers.json gets rclone's own count of the bytes each copy moved, which is the
    objects' total size; the job's log gets rclone's lines as text, not JSON."""
    _, client = s3
    client.put_object(Bucket="lab-fuse", Key="train/sub/b.bin", Body=b"b" * 43_210)
    client.put_object(Bucket="lab-fuse", Key="elsewhere/c.bin", Body=b"c" * 999)  # not mounted
    client.create_bucket(Bucket="lab-fuse-out")
    client.put_object(Bucket="lab-fuse-out", Key="old.txt", Body=b"kept\n")
    monkeypatch.setattr(rb, "fuse_problem", lambda: "no /dev/fuse on this machine")
    data = {"store": "s3", "bucket": "lab-fuse", "prefix": "train", "url": "s3://lab-fuse/train"}
    data |= {"target": str(tmp_path / "data"), "dest": "/data", "mode": "COPY"}
    out = {"store": "s3", "bucket": "lab-fuse-out", "url": "s3://lab-fuse-out"}
    out |= {"target": str(tmp_path / "out"), "dest": "~/out", "mode": "MOUNT"}
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "testing"}
    env |= {"AWS_SECRET_ACCESS_KEY": "testing", "AWS_ENDPOINT_URL": s3[0]}
    log_path = tmp_path / "job.log"
    with log_path.open("a") as log:
        assert rb.fetch([data, out], env, str(tmp_path), log) == 0, log_path.read_text()
        (tmp_path / "out" / "model.bin").write_bytes(b"m" * 7_777)
        assert rb.finish([data, out], env, str(tmp_path), log) == 0, log_path.read_text()
    traffic = json.loads((tmp_path / "bucket-transfers.json").read_text())
    assert [(t["dest"], t["url"], t["direction"], t["bytes"]) for t in traffic] == [
        ("/data", "s3://lab-fuse/train", "in", len(b"alpha\n") + 43_210),
        ("~/out", "s3://lab-fuse-out", "in", len(b"kept\n")),
        ("~/out", "s3://lab-fuse-out", "out", 7_777),  # only the new file went back
    ]
    text = log_path.read_text()
    assert "rclone warning:" in text and "Transferred:" in text
    assert not any(line.startswith("{") for line in text.splitlines()), text


def test_a_real_fuse_mount_of_an_azurite_container(tmp_path: Path) -> None:
    """Azurite's path-style endpoint through the account SAS the daemon makes for the nodes
    (rclone cannot use a key there), mounted through the kernel, written and written back."""
    assert rb.fuse_problem() == "", "this test needs a usable /dev/fuse and fusermount3"
    from azure.storage.blob import BlobServiceClient

    with azurite() as blob:
        container = BlobServiceClient.from_connection_string(
            blob.connection_string
        ).create_container("lab-fuse-az")
        container.upload_blob("train/a.txt", b"alpha\n")
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "AZURE_STORAGE_CONNECTION_STRING": blob.connection_string,
        }
        target = tmp_path / "mnt"
        url = f"az://{AZURITE_ACCOUNT}/lab-fuse-az/train"
        mount = {"store": "azure", "account": AZURITE_ACCOUNT, "bucket": "lab-fuse-az"}
        mount |= {"prefix": "train", "url": url, "target": str(target), "dest": "/data"}
        sas_url = rclone_sas_url(env)
        assert sas_url is not None
        mount |= {"mode": "MOUNT", "sas_url": sas_url}
        assert str(mount["sas_url"]).startswith(f"http://127.0.0.1:{blob.port}/{AZURITE_ACCOUNT}?")
        log_path = tmp_path / "job.log"
        log = log_path.open("a")
        try:
            assert rb.fetch([mount], env, str(tmp_path), log) == 0, log_path.read_text()
            assert os.path.ismount(target)
            assert (target / "a.txt").read_text() == "alpha\n"  # read through the kernel
            (target / "out.txt").write_text("written through FUSE\n")
        finally:
            assert rb.finish([mount], env, str(tmp_path), log) == 0, log_path.read_text()
            log.close()
        assert not os.path.ismount(target)
        assert container.download_blob("train/out.txt").readall() == b"written through FUSE\n"


def test_only_a_path_style_blob_endpoint_needs_a_sas() -> None:
    key = f"AccountKey={AZURITE_KEY}"
    azurite_style = f"AccountName=acct;{key};BlobEndpoint=http://127.0.0.1:10000/acct"
    assert rclone_sas_url({"AZURE_STORAGE_CONNECTION_STRING": azurite_style}) is not None
    china = f"AccountName=acct;{key};BlobEndpoint=https://acct.blob.core.chinacloudapi.cn/"
    assert rclone_sas_url({"AZURE_STORAGE_CONNECTION_STRING": china}) is None
    assert rclone_sas_url({"AZURE_STORAGE_CONNECTION_STRING": f"AccountName=acct;{key}"}) is None
    conf = rb.rclone_env(
        {"store": "azure", "account": "acct"}, 0, {"AZURE_STORAGE_CONNECTION_STRING": china}
    )
    assert conf["RCLONE_CONFIG_SKYD0_ENDPOINT"] == "blob.core.chinacloudapi.cn"
    assert conf["RCLONE_CONFIG_SKYD0_KEY"] == AZURITE_KEY
    sas = rb.rclone_env({"store": "azure", "sas_url": "http://h/acct?sig=x"}, 1, {})
    assert sas == {
        "RCLONE_CONFIG_SKYD1_TYPE": "azureblob",
        "RCLONE_CONFIG_SKYD1_SAS_URL": "http://h/acct?sig=x",
    }
