"""Build Azure catalog rows from the unauthenticated Azure Retail Prices API.

One query for Linux pay-as-you-go VM meters, following `NextPageLink` to the end.
A meter's `skuName`/`meterName` ending in "Spot" is the spot price of that size;
"Low Priority" meters (the retired batch discount) and Windows products are left
out. The API has no zones, so `zone` is empty. vCPUs, memory and GPUs come from
the shipped size table (see azure_vm_sizes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from skyd.catalog.fetch.azure_vm_sizes import AzureVmSize
from skyd.catalog.fetch.endpoints import FetchEndpoints
from skyd.catalog.fetch.errors import CatalogFetchError
from skyd.catalog.fetch.http_json import JsonGetter
from skyd.catalog.fetch.json_shape import typed_field
from skyd.catalog.fetch.rows import CatalogRow

log = logging.getLogger(__name__)

RETAIL_PRICES_QUERY = {
    "api-version": "2023-01-01-preview",
    "$filter": "serviceName eq 'Virtual Machines' and priceType eq 'Consumption'",
}
# A guard against a server whose NextPageLink never ends (the real API has a few hundred).
MAX_PAGES = 5000


@dataclass(frozen=True)
class RetailMeter:
    """One usable price item: a VM size's on-demand or spot price in a region."""

    arm_sku_name: str
    region: str
    spot: bool
    price: Decimal
    primary: bool
    effective: str


async def fetch_azure_rows(
    endpoints: FetchEndpoints, http: JsonGetter, sizes: Mapping[str, AzureVmSize]
) -> list[CatalogRow]:
    items: list[Any] = []
    url: str | None = endpoints.azure_prices_url
    params: Mapping[str, str] | None = RETAIL_PRICES_QUERY
    seen: set[str] = set()
    page = 0
    while url:
        page += 1
        where = f"Azure retail prices page {page}"
        if page > MAX_PAGES or url in seen:
            raise CatalogFetchError(f"{where}: NextPageLink loops or never ends ({url})")
        seen.add(url)
        document = await http.get(url, params=params)
        items.extend(typed_field(document, "Items", list, where))
        next_link = document.get("NextPageLink")
        if next_link is not None and not isinstance(next_link, str):
            raise CatalogFetchError(f"{where}: NextPageLink is not a string")
        # NextPageLink already carries the query (with $skip); don't add ours again.
        url, params = next_link or None, None
    rows = rows_from_meters(linux_vm_meters(items), sizes)
    log.info("azure: %d rows from %d price items in %d pages", len(rows), len(items), page)
    return rows


def linux_vm_meters(items: Iterable[Any]) -> list[RetailMeter]:
    """The Linux on-demand and spot VM meters among raw `Items`, skipping everything else."""
    meters = []
    for index, item in enumerate(items):
        where = f"Azure retail price item {index}"
        if not isinstance(item, dict):
            raise CatalogFetchError(f"{where}: expected an object, got {type(item).__name__}")
        if item.get("type", "Consumption") != "Consumption":
            continue
        if item.get("serviceName", "Virtual Machines") != "Virtual Machines":
            continue
        if item.get("unitOfMeasure", "1 Hour") != "1 Hour":
            continue
        names = " ".join(str(item.get(key, "")) for key in ("meterName", "skuName"))
        if "Low Priority" in names or "Windows" in str(item.get("productName", "")):
            continue
        sku = item.get("armSkuName")
        region = item.get("armRegionName")
        if not sku or not region:
            continue
        raw_price = item.get("retailPrice")
        try:
            price = Decimal(str(raw_price))
        except InvalidOperation:
            raise CatalogFetchError(f"{where}: retailPrice {raw_price!r} is not a number") from None
        if not price.is_finite() or price <= 0:
            continue
        meters.append(
            RetailMeter(
                arm_sku_name=str(sku),
                region=str(region),
                spot="Spot" in names,
                price=price,
                primary=bool(item.get("isPrimaryMeterRegion", True)),
                effective=str(item.get("effectiveStartDate", "")),
            )
        )
    return meters


def rows_from_meters(
    meters: Iterable[RetailMeter], sizes: Mapping[str, AzureVmSize]
) -> list[CatalogRow]:
    """One row per (size, region), joining its on-demand and spot meters."""
    chosen: dict[tuple[str, str, bool], RetailMeter] = {}
    for meter in meters:
        key = (meter.arm_sku_name, meter.region, meter.spot)
        # Azure repeats some meters (non-primary regions, superseded prices):
        # the primary meter with the latest start date is the one in force.
        rank = (meter.primary, meter.effective)
        if key not in chosen or rank > (chosen[key].primary, chosen[key].effective):
            chosen[key] = meter
    unknown = sorted({sku for sku, _, _ in chosen if sku not in sizes})
    if unknown:
        log.info("azure: %d sizes not in the size table were left out", len(unknown))
    rows = []
    for sku, region in sorted({(sku, region) for sku, region, _ in chosen}):
        size = sizes.get(sku)
        if size is None:
            continue
        on_demand = chosen.get((sku, region, False))
        spot = chosen.get((sku, region, True))
        rows.append(
            CatalogRow(
                cloud="azure",
                instance_type=sku,
                accelerator_name=size.accelerator_name,
                accelerator_count=size.accelerator_count,
                vcpus=size.vcpus,
                memory_gib=size.memory_gib,
                price=on_demand.price if on_demand else None,
                spot_price=spot.price if spot else None,
                region=region,
            )
        )
    return rows
