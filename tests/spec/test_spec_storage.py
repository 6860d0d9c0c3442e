"""Bucket file mounts: SkyPilot's URL form and storage objects, validated and located."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyd.errors import SpecError
from skyd.spec import parse_task
from skyd.spec.storage import StorageMode


@pytest.mark.parametrize(
    ("url", "store", "bucket", "prefix", "account"),
    [
        ("s3://data/train", "s3", "data", "train", None),
        ("gs://gpt2-data-skypilot", "gcs", "gpt2-data-skypilot", "", None),
        ("r2://weights/v1/model.bin", "r2", "weights", "v1/model.bin", None),
        ("az://labacct/datasets/imagenet", "azure", "datasets", "imagenet", "labacct"),
        ("https://labacct.blob.core.windows.net/datasets/x", "azure", "datasets", "x", "labacct"),
    ],
)
def test_bucket_urls_are_copy_mounts(
    url: str, store: str, bucket: str, prefix: str, account: str | None
) -> None:
    spec = parse_task(f"file_mounts:\n  /data: {url}\nrun: x\n")
    mount = spec.storage_mounts["/data"]
    assert (mount.store, mount.bucket, mount.prefix, mount.account) == (
        store,
        bucket,
        prefix,
        account,
    )
    assert mount.mode is StorageMode.COPY and spec.file_mounts == {}


def test_storage_objects_take_envs_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    spec = parse_task(
        "envs: {BUCKET: lab-ckpts}\n"
        "file_mounts:\n"
        "  /output:\n    name: $BUCKET\n    mode: mount\n"
        "  /upload:\n    name: lab-upload\n    source: ./ckpt\n    store: gcs\n"
        "    persistent: false\n"
        "  /in:\n    source: s3://public-data/x\n    mode: COPY\n"
        "run: x\n",
        base_dir=tmp_path,
    )
    output, upload, data_in = (spec.storage_mounts[d] for d in ("/output", "/upload", "/in"))
    assert (output.bucket, output.store, output.mode) == ("lab-ckpts", "s3", StorageMode.MOUNT)
    assert (upload.store, upload.persistent, upload.source_local) == (
        "gcs",
        False,
        str(tmp_path / "ckpt"),
    )
    assert (data_in.bucket, data_in.prefix, data_in.mode) == ("public-data", "x", StorageMode.COPY)
    summary_mounts = spec.public_summary()["storage_mounts"]
    assert isinstance(summary_mounts, dict)
    assert summary_mounts["/in"]["url"] == "s3://public-data/x"


@pytest.mark.parametrize(
    ("mount", "field", "fragment"),
    [
        ("{name: null, mode: MOUNT}", "file_mounts./outputs", "needs a name"),
        ("{name: Bad_Name!}", "file_mounts./outputs.name", "not a valid bucket name"),
        ("{name: ok-name, store: dropbox}", "file_mounts./outputs.store", "s3, gcs, azure, r2"),
        ("{source: 's3://b/x', store: gcs}", "file_mounts./outputs.store", "does not match"),
        ("{name: ok-name, persistant: true}", "file_mounts./outputs.persistant", "'persistent'"),
        ("{name: ok-name, source: ./missing}", "file_mounts./outputs.source", "does not exist"),
    ],
)
def test_bad_storage_objects_name_field_and_fix(
    mount: str, field: str, fragment: str, tmp_path: Path
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_task(f"file_mounts:\n  /outputs: {mount}\nrun: x\n", base_dir=tmp_path)
    assert caught.value.field == field
    assert fragment in caught.value.message
