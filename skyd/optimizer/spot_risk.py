"""Spot preemption rates: how the optimizer turns availability signals into an hourly risk."""

from __future__ import annotations

import math

# AWS Spot Instance Advisor buckets ("<5%", "5-10%", "10-15%", "15-20%", ">20%") say which share
# of spot instances of a type were interrupted over the trailing month. We take each bucket's
# mid-point (and 30 % for the open ">20%" bucket) as the probability that one instance is
# interrupted during its life.
ADVISOR_BUCKET_INTERRUPTED_FRACTION: tuple[float, ...] = (0.025, 0.075, 0.125, 0.175, 0.30)

# Research jobs on spot rarely live a whole month; a day is the lifetime we assume when turning
# "share of instances interrupted" into a rate per instance-hour.
DEFAULT_ASSUMED_INSTANCE_LIFETIME_HOURS = 24.0


def advisor_bucket_preemptions_per_hour(
    bucket: int, lifetime_hours: float = DEFAULT_ASSUMED_INSTANCE_LIFETIME_HOURS
) -> float:
    """Hourly preemption rate implied by an AWS Spot Advisor interruption bucket (`r` field).

    Treats the bucket as the chance an instance is interrupted within `lifetime_hours` and
    solves 1 - exp(-rate * lifetime) = fraction for a constant (Poisson) rate.
    """
    if not 0 <= bucket < len(ADVISOR_BUCKET_INTERRUPTED_FRACTION):
        last = len(ADVISOR_BUCKET_INTERRUPTED_FRACTION) - 1
        raise ValueError(
            f"spot advisor bucket {bucket!r} is unknown; use 0..{last}"
            " (the `r` index into the feed's `ranges`)"
        )
    if lifetime_hours <= 0:
        raise ValueError(f"lifetime_hours {lifetime_hours!r} must be > 0")
    fraction = ADVISOR_BUCKET_INTERRUPTED_FRACTION[bucket]
    return -math.log1p(-fraction) / lifetime_hours


# With no signal at all we assume the riskiest advisor bucket: unknown markets are treated as
# volatile so that spot is only picked when it is cheap enough to absorb restarts.
DEFAULT_PREEMPTIONS_PER_HOUR = advisor_bucket_preemptions_per_hour(
    len(ADVISOR_BUCKET_INTERRUPTED_FRACTION) - 1
)


def availability_preemptions_per_hour(available_fraction: float, mean_outage_hours: float) -> float:
    """Rate of capacity losses implied by a trace: available share and mean outage length.

    In a two-state on/off process the number of losses per hour of availability is
    (1 - a) / (a * mean_outage). Returns +inf when the market is never available.
    """
    if not 0.0 <= available_fraction <= 1.0:
        raise ValueError(f"available_fraction {available_fraction!r} must be within 0..1")
    if mean_outage_hours <= 0:
        raise ValueError(f"mean_outage_hours {mean_outage_hours!r} must be > 0")
    if available_fraction == 0.0:
        return math.inf
    return (1.0 - available_fraction) / (available_fraction * mean_outage_hours)
