"""`fetch_catalog("azure")` end to end against the fake Retail Prices API."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from skyd.catalog import Catalog
from skyd.catalog.fetch import CatalogFetchError, FetchEndpoints, RetryPolicy, fetch_catalog
from skyd.catalog.fetch.azure import linux_vm_meters, rows_from_meters
from skyd.catalog.fetch.azure_vm_sizes import shipped_vm_sizes
from skyd.testing.pricing_servers import AzureRetailServer, FaultPlan, InstantClock

FIXTURES = Path(__file__).parents[1] / "fixtures" / "pricing"


def retail_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads((FIXTURES / "azure_retail_items.json").read_text())
    return items


def read_rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with path.open(newline="") as src:
        return {(r["instance_type"], r["region"]): r for r in csv.DictReader(src)}


async def fetch(server: AzureRetailServer, out: Path, clock: InstantClock) -> Path:
    endpoints = FetchEndpoints(azure_prices_url=server.prices_url)
    return await fetch_catalog("azure", out, endpoints, clock=clock)


async def test_fetch_builds_a_loadable_catalog_across_pages(tmp_path: Path) -> None:
    clock = InstantClock()
    async with AzureRetailServer(retail_items(), page_size=4) as server:
        path = await fetch(server, tmp_path, clock)

    assert path == tmp_path / "azure.csv"
    rows = read_rows(path)
    assert set(rows) == {
        ("Standard_NC6s_v3", "eastus"),
        ("Standard_NC6s_v3", "westus2"),
        ("Standard_D4s_v5", "eastus"),
        ("Standard_D4s_v5", "westus"),
        ("Standard_NC24ads_A100_v4", "eastus"),
    }
    nc6 = rows[("Standard_NC6s_v3", "eastus")]
    # Linux pay-as-you-go and its Spot meter; Windows, Low Priority, DevTest and
    # reservation prices must not leak in.
    assert (nc6["price"], nc6["spot_price"]) == ("3.06", "0.306")
    assert (nc6["accelerator_name"], nc6["accelerator_count"]) == ("V100", "1")
    assert (nc6["vcpus"], nc6["memory_gib"], nc6["zone"], nc6["cloud"]) == ("6", "112", "", "azure")
    assert rows[("Standard_D4s_v5", "westus")]["spot_price"] == ""
    # The primary meter with the latest start date is the price in force.
    a100 = rows[("Standard_NC24ads_A100_v4", "eastus")]
    assert (a100["price"], a100["spot_price"]) == ("3.673", "0.918")

    # The fake only matches items the query's $filter selects, 4 per page, and the
    # fetcher must follow every NextPageLink to see all of them.
    matching = [
        i
        for i in retail_items()
        if i["serviceName"] == "Virtual Machines" and i["type"] == "Consumption"
    ]
    assert len(server.requests) == -(-len(matching) // 4)
    assert [r.page for r in server.requests] == list(range(1, len(server.requests) + 1))
    assert clock.sleeps == []

    catalog = Catalog.load(tmp_path, clouds=["azure"])
    assert len(catalog.offers) == 5


async def test_throttled_pages_are_waited_for_not_fatal(tmp_path: Path) -> None:
    faults = FaultPlan()
    faults.throttle(times=1, status=429, retry_after="12", page=2)
    faults.throttle(times=1, status=503, retry_after="3", page=3)
    clock = InstantClock()
    async with AzureRetailServer(retail_items(), page_size=4, faults=faults) as server:
        path = await fetch(server, tmp_path, clock)
    assert len(read_rows(path)) == 5
    assert len(clock.sleeps) == 2
    assert 12.0 <= clock.sleeps[0] <= 13.0
    assert 3.0 <= clock.sleeps[1] <= 4.0


@pytest.mark.parametrize("fault", ["server_error", "garbage"])
async def test_failed_page_keeps_the_old_catalog_byte_identical(tmp_path: Path, fault: str) -> None:
    old = tmp_path / "azure.csv"
    old.write_bytes(b"cloud,instance_type\r\nazure,the-old-good-one\r\n")
    before = old.read_bytes()
    faults = FaultPlan()
    if fault == "server_error":
        faults.server_error(status=500, page=3)
    else:
        faults.garbage(page=3)
    clock = InstantClock()
    async with AzureRetailServer(retail_items(), page_size=4, faults=faults) as server:
        with pytest.raises(CatalogFetchError) as failure:
            await fetch_catalog(
                "azure",
                tmp_path,
                FetchEndpoints(azure_prices_url=server.prices_url),
                clock=clock,
                retry=RetryPolicy(max_attempts=3),
            )
    assert old.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["azure.csv"]
    assert "/api/retail/prices" in str(failure.value)


async def test_nothing_priced_refuses_to_write_an_empty_catalog(tmp_path: Path) -> None:
    async with AzureRetailServer([]) as server:
        with pytest.raises(CatalogFetchError, match="no priced offerings"):
            await fetch(server, tmp_path, InstantClock())
    assert list(tmp_path.iterdir()) == []


def test_meter_selection_without_the_network() -> None:
    items = retail_items()
    meters = linux_vm_meters(items)
    assert not any("Windows" in m.arm_sku_name for m in meters)
    assert {m.price for m in meters if m.arm_sku_name == "Standard_NC6s_v3" and m.spot} == {
        Decimal("0.306"),
        Decimal("0.3672"),
    }
    rows = rows_from_meters(meters, shipped_vm_sizes())
    # Standard_E2s_v5 is priced but not in the size table: left out, not guessed.
    assert "Standard_E2s_v5" not in {r.instance_type for r in rows}


def test_size_table_corrects_the_h100_count() -> None:
    sizes = shipped_vm_sizes()
    assert sizes["Standard_ND96isr_H100_v5"].accelerator_count == 8
    assert sizes["Standard_NC24ads_A100_v4"].accelerator_name == "A100-80GB"
