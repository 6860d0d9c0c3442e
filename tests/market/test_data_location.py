"""Where a task's buckets are: GCS bucket metadata and object sizes from a GCS JSON API
emulator (gcp-storage-emulator over HTTP on loopback), S3's failure modes, the cache."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from skyd.catalog.locate import default_catalog_dir
from skyd.clock import VirtualClock
from skyd.config import DataSettings
from skyd.market.data_location import DataLocator
from skyd.optimizer.egress import read_egress_table
from skyd.spec import parse_task


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(
    url: str, body: dict[str, Any] | None = None, data: bytes | None = None, method: str = "POST"
) -> None:
    payload = json.dumps(body).encode() if body is not None else data
    request = urllib.request.Request(url, data=payload, method=method)
    request.add_header("Content-Type", "application/json" if body else "application/octet-stream")
    urllib.request.urlopen(request, timeout=10).read()


@pytest.fixture(scope="module")
def gcs_url() -> Iterator[str]:
    from gcp_storage_emulator.server import create_server

    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    url = f"http://127.0.0.1:{port}"
    api = f"{url}/storage/v1/b"
    _call(f"{api}?project=lab", {"name": "lab-gcs", "location": "US-CENTRAL1"})
    # the emulator ignores `location` at insert (GCS honours it) and keeps it when patched
    _call(f"{api}/lab-gcs", {"location": "US-CENTRAL1"}, method="PATCH")
    _call(f"{api}?project=lab", {"name": "lab-multi", "location": "US"})
    upload = f"{url}/upload/storage/v1/b/lab-gcs/o?uploadType=media&name="
    _call(upload + "train/a.bin", data=b"a" * 1500)
    _call(upload + "train/b.bin", data=b"b" * 2500)
    _call(upload + "training-other/c.bin", data=b"c" * 9000)
    yield url
    server.stop()


def locator(clock: VirtualClock, **settings: Any) -> DataLocator:
    table = read_egress_table(default_catalog_dir() / "egress.csv")
    return DataLocator(DataSettings(**settings), table, clock)


def test_a_gcs_bucket_region_and_size_come_from_its_metadata_and_listing(gcs_url: str) -> None:
    data = locator(VirtualClock(0.0), gcs_endpoint_url=gcs_url)
    spec = parse_task("file_mounts:\n  /data: gs://lab-gcs/train\nrun: x\n", source="t.yaml")
    assert data.footprint(spec).transfers[0].region is None  # type: ignore[union-attr]
    before = data.version
    asyncio.run(data.prefetch(spec))
    assert data.version > before
    [move] = data.footprint(spec).transfers  # type: ignore[union-attr]
    assert (move.cloud, move.region) == ("gcp", "us-central1")
    assert move.gigabytes == pytest.approx(4000 / 1e9)  # train/ only, not training-other/
    assert data.note("gs://lab-gcs/train") is None


def test_a_multi_region_bucket_has_no_single_region(gcs_url: str) -> None:
    data = locator(VirtualClock(0.0), gcs_endpoint_url=gcs_url)
    spec = parse_task("inputs:\n  gs://lab-multi: 10\nrun: x\n", source="t.yaml")
    asyncio.run(data.prefetch(spec))
    [move] = data.footprint(spec).transfers  # type: ignore[union-attr]
    assert move.region is None and move.gigabytes == 10


def test_a_missing_bucket_is_unknown_says_why_and_is_asked_again_later(gcs_url: str) -> None:
    clock = VirtualClock(0.0)
    data = locator(clock, gcs_endpoint_url=gcs_url)
    spec = parse_task("inputs:\n  gs://nowhere: 10\nrun: x\n", source="t.yaml")
    asyncio.run(data.prefetch(spec))
    note = data.note("gs://nowhere")
    assert note is not None and "answered 404" in note
    version = data.version
    asyncio.run(data.prefetch(spec))
    assert data.version == version  # cached: not asked again at once
    asyncio.run(clock.advance(61.0))
    asyncio.run(data.prefetch(spec))
    assert data.version > version


def test_without_an_endpoint_gcs_and_azure_buckets_are_not_looked_up() -> None:
    data = locator(VirtualClock(0.0))
    spec = parse_task(
        "inputs:\n  gs://lab-gcs: 10\n  https://acct.blob.core.windows.net/box: 5\nrun: x\n",
        source="t.yaml",
    )
    asyncio.run(data.prefetch(spec))
    moves = data.footprint(spec).transfers  # type: ignore[union-attr]
    assert [(m.cloud, m.region) for m in moves] == [("gcp", None), ("azure", None)]
    assert "no gcs lookup configured" in (data.note("gs://lab-gcs") or "")
