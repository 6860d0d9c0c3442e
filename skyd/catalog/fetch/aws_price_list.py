"""Read Linux on-demand hourly prices out of an AWS Price List bulk offer file (EC2, one region).

The offer file (`offers/v1.0/aws/AmazonEC2/current/<region>/index.json`) lists
`products` by SKU with their attributes, and `terms.OnDemand[sku]` with the
price dimensions. Many SKUs share an instance type (Windows, dedicated tenancy,
BYOL, pre-installed SQL Server, capacity reservations); only the plain shared
Linux one with nothing pre-installed is the price a skyd launch pays.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from skyd.catalog.fetch.errors import CatalogFetchError
from skyd.catalog.fetch.json_shape import typed_field

COMPUTE_FAMILIES = frozenset({"Compute Instance", "Compute Instance (bare metal)"})

# Attribute values of the SKU skyd launches; an attribute absent from the file
# (older offer files lack `marketoption`) is not held against the SKU.
LINUX_ON_DEMAND_ATTRIBUTES: Mapping[str, str] = {
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
    "licenseModel": "No License required",
    "marketoption": "OnDemand",
}


def offer_file_path(region: str) -> str:
    return f"/offers/v1.0/aws/AmazonEC2/current/{region}/index.json"


def linux_on_demand_prices(offer: Any, where: str) -> dict[str, Decimal]:
    """Instance type → USD per hour, for the Linux/shared/no-software SKUs of one offer file."""
    products = typed_field(offer, "products", dict, where)
    terms = typed_field(offer, "terms", dict, where)
    on_demand = typed_field(terms, "OnDemand", dict, f"{where} terms")
    prices: dict[str, Decimal] = {}
    for sku, product in products.items():
        if not isinstance(product, dict) or product.get("productFamily") not in COMPUTE_FAMILIES:
            continue
        attributes = typed_field(product, "attributes", dict, f"{where} product {sku}")
        if any(
            attributes.get(name, wanted) != wanted
            for name, wanted in LINUX_ON_DEMAND_ATTRIBUTES.items()
        ):
            continue
        instance_type = attributes.get("instanceType")
        if not isinstance(instance_type, str) or sku not in on_demand:
            continue
        price = _hourly_usd(on_demand[sku], f"{where} terms.OnDemand[{sku}]")
        if price is None:
            continue
        # Several matching SKUs for one type would be a format change; the cheapest
        # is the least surprising answer, and validation later keeps it positive.
        if instance_type not in prices or price < prices[instance_type]:
            prices[instance_type] = price
    return prices


def _hourly_usd(offer_terms: Any, where: str) -> Decimal | None:
    if not isinstance(offer_terms, dict):
        raise CatalogFetchError(f"{where}: expected an object of offer terms")
    for term in offer_terms.values():
        dimensions = typed_field(term, "priceDimensions", dict, where)
        for dimension in dimensions.values():
            if not isinstance(dimension, dict) or dimension.get("unit") != "Hrs":
                continue
            per_unit = typed_field(dimension, "pricePerUnit", dict, where)
            text = per_unit.get("USD")
            try:
                price = Decimal(str(text))
            except InvalidOperation:
                raise CatalogFetchError(
                    f"{where}: pricePerUnit.USD {text!r} is not a number"
                ) from None
            # AWS lists retired or not-yet-launched types at 0.00; not a real price.
            if price.is_finite() and price > 0:
                return price
    return None
