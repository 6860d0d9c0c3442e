"""The Market tab's rows: the daemon's cheapest on-demand and spot offers merged into one row
per accelerator and cloud, with the spot availability last heard from market events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

JsonObject = dict[str, Any]


def _accelerator(offer: Mapping[str, Any]) -> str:
    return f"{offer.get('accelerator_name')}:{offer.get('accelerator_count')}"


def _where(offer: Mapping[str, Any]) -> str:
    return "/".join(str(p) for p in (offer.get("region"), offer.get("zone")) if p)


def merge_offers(
    on_demand: list[JsonObject], spot: list[JsonObject], availability: Mapping[str, bool]
) -> list[JsonObject]:
    """One row per (accelerator, count, cloud): the cheapest on-demand and spot offer, cheapest
    clouds first within each accelerator. `key` names the offer whose history to plot (the
    spot one when there is one: spot prices are the ones that move)."""
    rows: dict[tuple[str, int, str], JsonObject] = {}

    def row_for(offer: Mapping[str, Any]) -> JsonObject:
        group = (
            str(offer.get("accelerator_name")),
            int(offer.get("accelerator_count") or 0),
            str(offer.get("cloud")),
        )
        return rows.setdefault(
            group,
            {
                "gpu": _accelerator(offer),
                "cloud": offer.get("cloud"),
                "od_price": None,
                "od_where": None,
                "spot_price": None,
                "spot_where": None,
                "avail": None,
                "key": None,
            },
        )

    for offer in on_demand:
        row = row_for(offer)
        row["od_price"] = offer.get("price")
        row["od_where"] = _where(offer)
        row["key"] = row["key"] or offer.get("key")
    for offer in spot:
        row = row_for(offer)
        row["spot_price"] = offer.get("spot_price")
        row["spot_where"] = _where(offer)
        row["key"] = offer.get("key")
        row["avail"] = availability.get(str(offer.get("key")))

    def order(item: tuple[tuple[str, int, str], JsonObject]) -> tuple[str, int, float]:
        (name, count, _cloud), row = item
        prices = [p for p in (row["spot_price"], row["od_price"]) if p is not None]
        return (name.casefold(), count, min(prices) if prices else float("inf"))

    return [row for _, row in sorted(rows.items(), key=order)]


def availability_change(event: Mapping[str, Any]) -> tuple[str, bool] | None:
    """(offering key, available) from a market event that reports an availability change."""
    if event.get("kind") != "market":
        return None
    data = event.get("data") or {}
    new = data.get("new")
    if data.get("what") != "availability" or not isinstance(new, int | float):
        return None
    return str(data.get("scope")), bool(new)  # the daemon sends 1.0 / 0.0
