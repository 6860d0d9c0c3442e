"""What a changeover of slack is worth: the on-demand hours it is likely to save."""

from __future__ import annotations

import math


def spot_starts_left(slack: float, changeover: float, safety_net: float) -> int:
    """Spot runs still affordable from idle with `slack`: each start costs a changeover
    of slack, and none is made below the safety net (on demand is taken there).
    `changeover` must be positive: free changeovers allow any number of starts."""
    if changeover <= 0:
        raise ValueError(f"changeover must be positive hours, got {changeover!r}")
    if slack < safety_net - 1e-9:
        return 0
    return math.floor((slack - safety_net) / changeover + 1e-9) + 1


def _poisson_at_least(k: int, mean: float) -> float:
    """P(Poisson(mean) >= k)."""
    if k <= 0:
        return 1.0
    term = math.exp(-mean)
    below = term
    for i in range(1, k):
        term *= mean / i
        below += term
    return max(0.0, 1.0 - below)


def on_demand_hours(starts: int, work_hours: float, mean_run_hours: float) -> float:
    """Expected work left for on demand when `starts` memoryless spot runs (mean
    `mean_run_hours`) are all the job may still begin: E[(W - T)^+], T the sum of
    their lengths (Gamma(starts, mean)); W·P(T <= W) - starts·mean·P(T' <= W), with
    P(Gamma(k, m) <= W) = P(Poisson(W / m) >= k)."""
    if work_hours <= 0:
        return 0.0
    if starts <= 0 or mean_run_hours <= 0:
        return work_hours
    lam = work_hours / mean_run_hours
    short = work_hours * _poisson_at_least(starts, lam)
    spent = starts * mean_run_hours * _poisson_at_least(starts + 1, lam)
    return max(0.0, short - spent)


def changeover_worth(
    slack: float,
    changeover: float,
    safety_net: float,
    work_hours: float,
    mean_run_hours: float,
) -> float:
    """On-demand hours the end of the spot run about to start is expected to cost.

    The run's start leaves `slack` - `changeover`; when it ends, the spot starts left
    are one fewer than had it not ended, so its end is worth the on-demand hours one
    more start would save: nothing while starts are plenty for the work left, up to
    a whole run of work when this is the last one.
    """
    if changeover <= 0:
        return 0.0  # a changeover that takes no time spends no slack
    left = spot_starts_left(slack - changeover, changeover, safety_net)
    fewer = on_demand_hours(left, work_hours, mean_run_hours)
    more = on_demand_hours(left + 1, work_hours, mean_run_hours)
    return max(0.0, fewer - more)
