"""Summaries of observed spot availability that a policy can plan with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class AvailabilityStats:
    """Share of time spot was available and the mean length of its up and down runs."""

    fraction: float
    mean_up_hours: float
    mean_down_hours: float
    observed_hours: float


def settled_history(history: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """The history up to the last change: what is known before the current run began.

    Statistics over it only change when availability changes, so a policy built on them
    gives the same answer at every tick between two changes.
    """
    if len(history) == 0:
        return history
    changes = np.flatnonzero(history[1:] != history[:-1])
    if len(changes) == 0:
        return history[:0]
    return history[: int(changes[-1]) + 1]


def current_run_hours(history: npt.NDArray[np.bool_], step_hours: float) -> float:
    """How long the last value of `history` has held (0 for no history)."""
    n = len(history)
    if n == 0:
        return 0.0
    changes = np.flatnonzero(history[1:] != history[:-1])
    start = int(changes[-1]) + 1 if len(changes) else 0
    return (n - start) * step_hours


def availability_stats(history: npt.NDArray[np.bool_], step_hours: float) -> AvailabilityStats:
    """Fraction and run lengths of a sampled availability series (no data: all zero)."""
    n = len(history)
    if n == 0 or step_hours <= 0:
        return AvailabilityStats(0.0, 0.0, 0.0, 0.0)
    up = int(np.count_nonzero(history))
    as_int = history.astype(np.int8)
    edges = np.diff(as_int)
    up_runs = int(np.count_nonzero(edges == 1)) + int(as_int[0] == 1)
    down_runs = int(np.count_nonzero(edges == -1)) + int(as_int[0] == 0)
    return AvailabilityStats(
        fraction=up / n,
        mean_up_hours=up * step_hours / up_runs if up_runs else 0.0,
        mean_down_hours=(n - up) * step_hours / down_runs if down_runs else 0.0,
        observed_hours=n * step_hours,
    )


def resample_history(
    observations: Sequence[tuple[float, bool]],
    now: float,
    step_seconds: float,
    lookback_seconds: float,
) -> npt.NDArray[np.bool_]:
    """Turn timestamped availability signals into the sampled grid ZoneMarket.history wants.

    `observations` are (unix time, available) pairs, oldest first; each holds until
    the next. The grid ends with the sample at `now`; times before the first
    observation are left out (no data is not "unavailable").
    """
    if step_seconds <= 0:
        raise ValueError(f"step_seconds must be > 0, got {step_seconds!r}")
    if not observations:
        return np.zeros(0, dtype=np.bool_)
    times = np.array([t for t, _ in observations], dtype=np.float64)
    values = np.array([v for _, v in observations], dtype=np.bool_)
    first = max(times[0], now - lookback_seconds)
    count = int((now - first) // step_seconds) + 1
    grid = now - step_seconds * np.arange(count - 1, -1, -1, dtype=np.float64)
    index = np.searchsorted(times, grid, side="right") - 1
    return values[np.clip(index, 0, None)]


def run_lengths(history: npt.NDArray[np.bool_], step_hours: float, up: bool) -> FloatArray:
    """Lengths (hours, sorted) of the up (or down) runs of a sampled series.

    The first run may have begun before the history did; it is counted as seen.
    """
    if len(history) == 0 or step_hours <= 0:
        return np.zeros(0)
    as_int = history.astype(np.int8)
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(as_int)) + 1, [len(as_int)]))
    lengths = np.diff(bounds) * step_hours
    return np.sort(lengths[as_int[bounds[:-1]] == int(up)])


@dataclass(frozen=True, slots=True)
class RunOutlook:
    """What the runs seen so far say about one that has lasted `age` hours.

    `residual_hours`: its expected remaining length (mean over the runs longer than
    `age`, blended with a prior while they are few). `end_within`: the share of those
    runs that ended within the window asked about. `next_change_hours`: how much longer
    until either figure can change (a run length is crossed), None when never.
    """

    residual_hours: float
    end_within: float
    longer: int
    next_change_hours: float | None


def run_outlook(
    runs: FloatArray,
    age: float,
    window: float = 0.0,
    prior_residual: float = 0.0,
    prior_runs: float = 0.0,
) -> RunOutlook:
    """Residual life and short-end probability of a run of age `age`, from sorted `runs`."""
    first = int(np.searchsorted(runs, age, side="right"))
    longer = runs[first:]
    n = len(longer)
    seen = float(longer.mean()) - age if n else 0.0
    weight = n / (n + prior_runs) if n + prior_runs > 0 else 0.0
    residual = weight * seen + (1 - weight) * prior_residual
    ended = int(np.searchsorted(runs, age + window, side="right")) - first
    changes = []
    if n:
        changes.append(float(longer[0]) - age)
    if first + ended < len(runs):
        changes.append(float(runs[first + ended]) - age - window)
    return RunOutlook(
        residual_hours=residual,
        end_within=ended / n if n else 0.0,
        longer=n,
        next_change_hours=min(changes) if changes else None,
    )


def time_of_day_hazard(
    history: npt.NDArray[np.bool_],
    step_hours: float,
    at: int,
    window_hours: float,
    prior_ends: float,
    day_hours: float = 24.0,
    up: bool = True,
) -> float:
    """How much likelier spot is to be taken back in the `window_hours` after sample `at`.

    (With `up` false: how much likelier an outage is to end there.)

    Spot capacity follows the working day (on the V100 traces the us-east-1 zones
    lose a running instance 2–5× as often in US business hours as at night), so the
    same clock hours of the earlier days in `history[:at]` say something the week's
    run lengths do not. Returns the ends of up runs per up hour in those windows over
    the same rate in all of `history[:at]`, shrunk towards 1 by `prior_ends` ends:
    1 with no such pattern, or too little history to tell.
    """
    if step_hours <= 0 or at < 2 or window_hours <= 0:
        return 1.0
    seen = history[:at] if up else ~history[:at]
    in_run = seen[:-1]
    ends = in_run & ~seen[1:]
    up_samples = int(np.count_nonzero(in_run))
    all_ends = int(np.count_nonzero(ends))
    if up_samples == 0 or all_ends == 0:
        return 1.0
    rate = all_ends / up_samples
    day = max(1, round(day_hours / step_hours))
    width = max(1, round(window_hours / step_hours))
    # The same clock window on each earlier day: [at - k·day, at - k·day + width).
    starts = np.arange(at - day, -1, -day)
    window_up = window_ends = 0
    for start in starts:
        stop = min(int(start) + width, at - 1)
        window_up += int(np.count_nonzero(in_run[start:stop]))
        window_ends += int(np.count_nonzero(ends[start:stop]))
    expected = rate * window_up + prior_ends
    if expected <= 0:  # never in that state at that hour, and no prior: nothing to say
        return 1.0
    return (window_ends + prior_ends) / expected
