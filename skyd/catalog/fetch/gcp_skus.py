"""Turn Cloud Billing Catalog SKUs of Compute Engine into per-region unit prices.

Compute Engine does not price machine types: it prices a family's vCPU-hour and
GiB-hour ("N1 Predefined Instance Core running in Americas", "A2 Instance Ram
running in Belgium", "N2D AMD Instance Core …", "Compute optimized Core …" for c2)
and each GPU-hour ("Nvidia Tesla T4 GPU running in …"), with `usageType`
OnDemand or Preemptible (spot). Each SKU lists the regions it applies to in
`serviceRegions`. SKUs for custom, sole-tenant, committed or otherwise special
use do not match the description patterns below and are ignored; a family with
no matching SKUs gets no price, so its machine types are left out. Prices are
per family token: sub-families priced apart under one token (if any) are not told
apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from skyd.catalog.fetch.errors import CatalogFetchError
from skyd.catalog.fetch.json_shape import typed_field

# The usage types a catalog row is made of; commitments and the like are skipped.
SPOT_USAGE = {"OnDemand": False, "Preemptible": True}

_RUNNING_IN = r" running in [A-Za-z0-9 .\-]+"
# Families whose SKUs are named by purpose rather than by family token.
_NAMED_FAMILIES = {"Compute optimized": "c2", "Memory-optimized": "m1"}
_VM_SKU = re.compile(
    r"(?:(?:Spot )?Preemptible )?"
    r"(?P<family>[A-Z][A-Z0-9]*|" + "|".join(_NAMED_FAMILIES) + r")"
    r"(?: AMD| Arm| Intel)? (?:Predefined )?(?:Instance )?(?P<kind>Core|Ram)" + _RUNNING_IN
)
_GPU_SKU = re.compile(
    r"(?P<gpu>.+?) GPU(?: attached to (?:Spot )?(?:Preemptible )?VMs)?" + _RUNNING_IN
)
_UNIT_OF = {"Core": "h", "Ram": "GiBy.h"}
# Words that do not tell GPUs apart ("Nvidia Tesla T4" and "nvidia-tesla-t4" are the T4).
_NOISE_WORDS = frozenset({"nvidia", "tesla", "gpu"})


def gpu_words(name: str) -> frozenset[str]:
    """Comparable words of a GPU name from either API ('Nvidia A100 80GB' ~ 'nvidia-a100-80gb')."""
    return frozenset(re.split(r"[\s\-_]+", name.lower())) - _NOISE_WORDS - {""}


@dataclass
class GcpPriceBook:
    """Hourly unit prices keyed by (family or GPU words, region, spot)."""

    core: dict[tuple[str, str, bool], Decimal] = field(default_factory=dict)
    ram: dict[tuple[str, str, bool], Decimal] = field(default_factory=dict)
    gpu: dict[tuple[frozenset[str], str, bool], Decimal] = field(default_factory=dict)

    def host_price(
        self, family: str, region: str, spot: bool, vcpus: Decimal, memory_gib: Decimal
    ) -> Decimal | None:
        core = self.core.get((family, region, spot))
        ram = self.ram.get((family, region, spot))
        if core is None or ram is None:
            return None
        return core * vcpus + ram * memory_gib

    def gpu_price(self, accelerator_type: str, region: str, spot: bool) -> Decimal | None:
        return self.gpu.get((gpu_words(accelerator_type), region, spot))


def price_book(skus: Iterable[Any]) -> GcpPriceBook:
    book = GcpPriceBook()
    for index, sku in enumerate(skus):
        where = f"GCP billing SKU {index}"
        category = typed_field(sku, "category", dict, where)
        if category.get("resourceFamily") != "Compute":
            continue
        spot = SPOT_USAGE.get(category.get("usageType", ""))
        if spot is None:
            continue
        description = typed_field(sku, "description", str, where)
        where = f"GCP billing SKU {sku.get('skuId', index)} ({description})"
        regions = typed_field(sku, "serviceRegions", list, where, default=[])
        vm = _VM_SKU.fullmatch(description)
        gpu = _GPU_SKU.fullmatch(description) if vm is None else None
        if vm is not None:
            price = unit_price(sku, _UNIT_OF[vm["kind"]], where)
            table = book.core if vm["kind"] == "Core" else book.ram
            family = _NAMED_FAMILIES.get(vm["family"], vm["family"].lower())
            for region in regions:
                _keep_lowest(table, (family, str(region), spot), price)
        elif gpu is not None and category.get("resourceGroup") == "GPU":
            price = unit_price(sku, "h", where)
            words = gpu_words(gpu["gpu"])
            for region in regions:
                _keep_lowest(book.gpu, (words, str(region), spot), price)
    return book


def unit_price(sku: Any, expected_unit: str, where: str) -> Decimal | None:
    """Price per `expected_unit` of the SKU's current pricing; None if it is not in that unit."""
    infos = typed_field(sku, "pricingInfo", list, where)
    if not infos:
        return None
    # The API returns the pricing in force now first (and only, unless asked for history).
    expression = typed_field(infos[0], "pricingExpression", dict, where)
    if expression.get("usageUnit") != expected_unit:
        return None
    for rate in typed_field(expression, "tieredRates", list, where):
        money = typed_field(rate, "unitPrice", dict, where)
        price = money_amount(money, where)
        # A first tier at 0 is a free allowance, not the price.
        if price > 0:
            return price
    return None


def money_amount(money: dict[str, Any], where: str) -> Decimal:
    """google.type.Money → Decimal dollars (`units` is an int64 sent as a string)."""
    if money.get("currencyCode", "USD") != "USD":
        raise CatalogFetchError(
            f"{where}: price in {money.get('currencyCode')}, expected USD; "
            "do not pass currencyCode to the billing API"
        )
    try:
        units = int(money.get("units", 0) or 0)
        nanos = int(money.get("nanos", 0) or 0)
    except (TypeError, ValueError):
        raise CatalogFetchError(f"{where}: unitPrice {money} is not a Money value") from None
    return Decimal(units) + Decimal(nanos) / Decimal(1_000_000_000)


def _keep_lowest(
    table: dict[Any, Decimal], key: tuple[Any, str, bool], price: Decimal | None
) -> None:
    if price is not None and (key not in table or price < table[key]):
        table[key] = price
