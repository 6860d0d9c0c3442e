"""How long a running job's checkpoint may stay on its VM before it is pulled again: the
interval that costs least in egress plus the work a lost instance would take with it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from skyd.runner.pulls import CheckpointPull


@dataclass(frozen=True, slots=True)
class PullPrice:
    """What the interval trades: what the last pull's bytes cost (micro-dollars), what the
    instance costs an hour (the work lost is paid again at that rate), and how often an
    instance like it is lost unannounced (spot preemptions an hour; 0 on demand: a move or a
    cancel kills the job and pulls once more, so only a preemption loses work)."""

    pull_micros: int
    hourly_micros: int
    losses_per_hour: float


# The price of a pull that was just reported; None when it is not known (its instance is not
# recorded, or no cloud bills its egress).
PullPricing = Callable[[CheckpointPull], PullPrice | None]


def pull_interval_s(price: PullPrice | None, floor_s: float, ceiling_s: float) -> float:
    """Young's rule in money: pulling every T hours costs C / T an hour in egress, and a loss
    (rate L) throws away T / 2 of work on average, paid again at P an hour: L * P * T / 2.
    Their sum is least at T = sqrt(2 C / (L P)); kept within [floor_s, ceiling_s].

    A free pull (a lab host, a cloud whose egress is not billed, an unchanged directory) is
    taken as often as `floor_s` allows; a billed one on an instance that is never lost
    unannounced waits `ceiling_s`.
    """
    if price is None or price.pull_micros <= 0:
        return floor_s
    if price.hourly_micros <= 0 or price.losses_per_hour <= 0:
        return ceiling_s
    hours = math.sqrt(2.0 * price.pull_micros / (price.losses_per_hour * price.hourly_micros))
    return min(ceiling_s, max(floor_s, hours * 3600.0))
