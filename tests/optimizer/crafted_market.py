"""Small hand-made offerings and candidates for optimizer tests (prices in dollars for reading)."""

from __future__ import annotations

from skyd.model import Candidate, ExclusionReason, Offer, dollars_to_micros
from skyd.optimizer import AssignmentOption


def offer(
    cloud: str = "aws",
    region: str = "us-east-1",
    zone: str = "use1-az1",
    instance_type: str = "p3.2xlarge",
    accelerator: str = "V100",
    count: int = 1,
    vcpus: float = 8,
    price: str | None = "3.00",
    spot_price: str | None = "1.00",
) -> Offer:
    return Offer(
        cloud=cloud,
        region=region,
        zone=zone,
        instance_type=instance_type,
        accelerator_name=accelerator,
        accelerator_count=count,
        vcpus=vcpus,
        memory_gib=61,
        price_micros=None if price is None else dollars_to_micros(price),
        spot_price_micros=None if spot_price is None else dollars_to_micros(spot_price),
    )


def candidate(o: Offer, spot: bool = False) -> Candidate:
    price = o.hourly_micros(spot)
    assert price is not None
    return Candidate(offer=o, spot=spot, hourly_price_micros=price)


def feasible(*candidates: Candidate) -> list[tuple[Candidate, ExclusionReason | None]]:
    return [(c, None) for c in candidates]


def option(
    cost: str,
    *,
    cloud: str = "aws",
    region: str = "us-east-1",
    accelerator: str = "V100",
    count: int = 1,
    hours: float = 1.0,
    spot: bool = False,
    instance_type: str = "p3.2xlarge",
) -> AssignmentOption:
    """An option whose expected cost is `cost` dollars (hourly price = cost / hours)."""
    micros = dollars_to_micros(cost)
    o = offer(
        cloud=cloud,
        region=region,
        zone=f"{region}-a",
        instance_type=instance_type,
        accelerator=accelerator,
        count=count,
        price=None,
        spot_price=None,
    )
    c = Candidate(offer=o, spot=spot, hourly_price_micros=round(micros / hours))
    return AssignmentOption(candidate=c, expected_cost_micros=micros, expected_hours=hours)
