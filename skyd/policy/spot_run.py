"""What a zone's own history says about its current spot run: how long it will last."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from skyd.policy.availability import (
    RunOutlook,
    run_lengths,
    run_outlook,
    settled_history,
    time_of_day_hazard,
)
from skyd.policy.state import ZoneMarket

# The most the time-of-day ratio may say either way: a week holds only seven windows.
HAZARD_CLIP = 4.0


def clipped_hazard(ratio: float) -> float:
    """A time-of-day ratio kept within 1/HAZARD_CLIP..HAZARD_CLIP."""
    return min(max(ratio, 1 / HAZARD_CLIP), HAZARD_CLIP)


@dataclass(frozen=True, slots=True)
class SpotRunModel:
    """Expected rest of a zone's spot run from the lengths of its past runs and the hour.

    `prior_cycle_hours` is the up/down cycle assumed with no history, trusted half-way
    after `prior_hours` of it; `prior_runs` past runs as long as the current one are
    trusted half-way against that prior; `day_window_hours` (0: off) is how far ahead
    the same clock hours of earlier days are read, with `day_prior_ends` ends at the
    zone's usual rate assumed there on top of those seen.
    """

    prior_cycle_hours: float
    prior_hours: float
    prior_runs: float
    day_window_hours: float
    day_prior_ends: float

    def expected_up_hours(self, zone: ZoneMarket) -> float:
        """The zone's mean spot run, blended with the prior while its history is short."""
        stats = zone.settled_stats()
        seen = stats.observed_hours
        weight = seen / (seen + self.prior_hours)
        prior_up = self.prior_cycle_hours / 2
        return weight * stats.mean_up_hours + (1 - weight) * prior_up

    def outlook(self, zone: ZoneMarket, by_hour: bool = True) -> RunOutlook:
        """The zone's current spot run as its past runs see it (by age, and time of day)."""
        runs = _past_runs(zone)
        outlook = run_outlook(
            runs,
            zone.run_hours(),
            # Few runs seen: a run is expected to last as long as the zone's mean one.
            prior_residual=self.expected_up_hours(zone),
            prior_runs=self.prior_runs,
        )
        if not by_hour:
            return outlook
        hazard = self.time_of_day_hazard(zone)
        return replace(outlook, residual_hours=outlook.residual_hours / hazard)

    def heavy_tailed(self, zone: ZoneMarket, evidence: float = 0.0) -> bool:
        """Whether the zone's past runs vary more than memoryless ones would (CV > 1).

        Exponential run lengths have a coefficient of variation of 1, and a run's age
        says nothing of its rest; heavier tails (the V100 zones' 1.5–2.6) mean a run
        that has lasted tends to last. With under three runs seen, assumed so.

        `evidence`: how many standard errors above 1 the CV must be. The CV of n
        memoryless runs scatters by about 1/sqrt(n) (0.71/0.81/0.88/0.94 times it at
        n = 10/20/40/80, simulated), so at 0 a third of the weeks of a memoryless zone
        read as heavy-tailed; at 1, 4-11 %.
        """
        runs = _past_runs(zone)
        if len(runs) < 3:
            return True
        margin = 1.0 + evidence / math.sqrt(len(runs))
        return float(np.std(runs)) > margin * float(np.mean(runs))

    def time_of_day_hazard(self, zone: ZoneMarket) -> float:
        """How much likelier than usual the zone's runs ended at this run's start time of day.

        Read at the start of the current run (not now), so it holds for the whole run
        and the policy's answer still only changes when availability does. Kept within
        1/4..4: a week holds only seven such windows.
        """
        if not zone.available or self.day_window_hours <= 0:
            return 1.0
        start = len(settled_history(zone.history))
        ratio = time_of_day_hazard(
            zone.history, zone.history_step_hours, start, self.day_window_hours, self.day_prior_ends
        )
        return clipped_hazard(ratio)


def _past_runs(zone: ZoneMarket) -> npt.NDArray[np.float64]:
    """The lengths of the zone's spot runs before the current one (hours)."""
    return run_lengths(settled_history(zone.history), zone.history_step_hours, up=True)
