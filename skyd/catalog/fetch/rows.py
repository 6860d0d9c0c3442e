"""One row of a fetched catalog, in the column order every shipped catalog uses."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


def decimal_text(value: Decimal | None) -> str:
    """Plain decimal notation without trailing zeros (`0.0960000000` → `0.096`); None → ``."""
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


@dataclass(frozen=True)
class CatalogRow:
    """One launchable offering: prices are $/h, None where it is not sold that way."""

    cloud: str
    instance_type: str
    accelerator_name: str
    accelerator_count: int | None
    vcpus: Decimal
    memory_gib: Decimal
    price: Decimal | None
    spot_price: Decimal | None
    region: str
    zone: str = ""

    def as_record(self) -> dict[str, str]:
        return {
            "cloud": self.cloud,
            "instance_type": self.instance_type,
            "accelerator_name": self.accelerator_name,
            "accelerator_count": ""
            if self.accelerator_count is None
            else str(self.accelerator_count),
            "vcpus": decimal_text(self.vcpus),
            "memory_gib": decimal_text(self.memory_gib),
            "price": decimal_text(self.price),
            "spot_price": decimal_text(self.spot_price),
            "region": self.region,
            "zone": self.zone,
        }

    def sort_key(self) -> tuple[str, str, int, str, str]:
        return (
            self.instance_type,
            self.accelerator_name,
            self.accelerator_count or 0,
            self.region,
            self.zone,
        )
