"""The outage a job waits through: whose it is, how old, whether likely short, and its hour."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from skyd.policy.availability import (
    run_lengths,
    run_outlook,
    settled_history,
    time_of_day_hazard,
)
from skyd.policy.baselines import EPS
from skyd.policy.spot_run import clipped_hazard
from skyd.policy.state import PolicyState, ZoneMarket


def outage_history(state: PolicyState) -> npt.NDArray[np.bool_]:
    """The availability whose outages stop the job: the zone's, or the union of zones'."""
    zones = state.zones
    if len(zones) == 1:
        return zones[0].history
    shortest = min(len(z.history) for z in zones)
    union: npt.NDArray[np.bool_] = np.logical_or.reduce(
        [z.history[len(z.history) - shortest :] for z in zones]
    )
    return union


def outage_age_hours(state: PolicyState) -> float:
    """How long the job has had no spot zone to go to (0 while one is up)."""
    # A zone that is up but priced above on demand has no outage age to go by.
    return min(0.0 if z.available else z.run_hours() for z in state.zones)


def outage_hour_ratio(state: PolicyState, window_hours: float, prior_ends: float) -> float:
    """How much likelier than usual outages ended in the window after this one's start time.

    Read at the outage's start (the same clock window on earlier days), so it holds for
    the whole outage; kept within 1/4..4 like the spot-run figure.
    """
    history = outage_history(state)
    ratio = time_of_day_hazard(
        history,
        state.zones[0].history_step_hours,
        len(settled_history(history)),
        window_hours,
        prior_ends,
        up=False,
    )
    return clipped_hazard(ratio)


def short_outage_wait(
    state: PolicyState,
    waited: float,
    net: float,
    short_outage: float,
    outage_patience: float,
    prior_runs: float,
) -> float | None:
    """Hours to idle on rather than bridge now, when this outage is likely short.

    Bridging an outage costs two changeovers (on demand, then spot again) and on
    demand through it; waiting costs only its length. While at least `short_outage` of
    the past outages that lasted this long (once `prior_runs` of them are seen) ended
    within one more changeover, wait (up to `outage_patience` changeovers, never into
    the safety net `net`).
    """
    d = state.changeover_hours
    limit = outage_patience * d
    if waited >= limit - EPS or any(z.available for z in state.zones):
        # (Spot that is up but priced above on demand is no outage to go by.)
        return None
    history = outage_history(state)
    step = state.zones[0].history_step_hours
    outages = run_lengths(settled_history(history), step, up=False)
    outlook = run_outlook(outages, waited, window=d)
    if outlook.longer < prior_runs or outlook.end_within < short_outage:
        return None
    wait = limit - waited
    if outlook.next_change_hours is not None:
        wait = min(wait, outlook.next_change_hours)
    wait = min(wait, state.slack_hours - net)
    return wait if wait > EPS else None


def back_within(
    zones: list[ZoneMarket], window: float, prior_runs: float
) -> tuple[float, float | None]:
    """The chance that one of `zones`, all out, is back within `window` hours, and how
    much longer until that figure can change (None: never).

    Each zone's outages are taken as independent, each ended as the zone's own past
    outages that lasted as long did; a zone with fewer than `prior_runs` of those is
    counted as not coming back (an outage older than most it has had is a long one).
    """
    none_back = 1.0
    change: float | None = None
    for z in zones:
        outages = run_lengths(settled_history(z.history), z.history_step_hours, up=False)
        outlook = run_outlook(outages, z.run_hours(), window=window)
        if outlook.next_change_hours is not None:
            step = outlook.next_change_hours
            change = step if change is None else min(change, step)
        if outlook.longer >= prior_runs:
            none_back *= 1 - outlook.end_within
    return 1 - none_back, change
