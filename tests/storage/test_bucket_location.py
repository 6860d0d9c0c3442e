"""Where Azure and R2 buckets are, for data-aware placement: an Azure container's region comes
from [data] bucket_regions (its storage account's region is an ARM property skyd does not
query; Azurite has no ARM), and the note says how to set it; R2 needs no lookup and costs
nothing to read from (catalogs/egress.csv, Cloudflare's R2 pricing)."""

from __future__ import annotations

import asyncio
from typing import Any

from skyd.catalog.locate import default_catalog_dir
from skyd.clock import VirtualClock
from skyd.config import DataSettings
from skyd.market.data_location import DataLocator
from skyd.optimizer.egress import read_egress_table
from skyd.spec import parse_task


def _locator(**settings: Any) -> DataLocator:
    table = read_egress_table(default_catalog_dir() / "egress.csv")
    return DataLocator(DataSettings(**settings), table, VirtualClock(0.0))


def test_an_azure_container_takes_its_accounts_region_from_config() -> None:
    spec = parse_task(
        "inputs:\n  https://labacct.blob.core.windows.net/box/train: 100\nrun: x\n",
        source="t.yaml",
    )
    unknown = _locator()
    asyncio.run(unknown.prefetch(spec))
    [move] = unknown.footprint(spec).transfers  # type: ignore[union-attr]
    assert (move.cloud, move.region) == ("azure", None)
    note = unknown.note("az://labacct/box/train") or ""
    assert "ARM property" in note and '"az://ACCOUNT" = "REGION"' in note
    known = _locator(bucket_regions={"az://labacct": "westeurope"})
    asyncio.run(known.prefetch(spec))
    [move] = known.footprint(spec).transfers  # type: ignore[union-attr]
    assert (move.cloud, move.region, move.gigabytes) == ("azure", "westeurope", 100)
    assert known.note("az://labacct/box/train") == "region from [data] bucket_regions"


def test_an_r2_bucket_is_free_to_read_from_anywhere() -> None:
    data = _locator()
    spec = parse_task("inputs:\n  r2://lab-r2/train: 2000\nrun: x\n", source="t.yaml")
    asyncio.run(data.prefetch(spec))
    footprint = data.footprint(spec)
    assert footprint is not None
    [move] = footprint.transfers
    assert move.cloud == "r2" and data.note("r2://lab-r2/train") is None
    table = read_egress_table(default_catalog_dir() / "egress.csv")
    for cloud, region in (("aws", "us-east-1"), ("gcp", "us-central1"), ("azure", "eastus")):
        assert table.per_gb_micros("r2", None, cloud, region) == 0
