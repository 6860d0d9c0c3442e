"""Recorded spot availability change points → the regular grid a spot policy reads.

A change point holds until the next one (the last value observed is carried forward);
before a scope's first change point nothing is known, so the grid starts there (no data is
not "unavailable"). The grid ends with the sample at `now`, as ZoneMarket.history wants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from skyd.policy.availability import availability_stats

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# Clock times are floats near 1.8e9 s: a probe and the grid point meant to fall on it may
# differ by far less than this from rounding alone.
TIME_TOLERANCE = 1e-6
# The most samples one zone's history may have (a week at 3 s, or four weeks at 12 s): a
# longer window keeps its latest part.
MAX_SAMPLES = 200_000


@dataclass(frozen=True, slots=True)
class ZoneHistory:
    """One offering's availability on the grid, oldest first, the last sample being now.

    `current_run_hours` is how long the value in force now has held, in exact time (since
    the change point that began it, or since the grid's start if that is earlier).
    """

    history: BoolArray
    step_hours: float
    current_run_hours: float | None

    @property
    def observed_hours(self) -> float:
        return len(self.history) * self.step_hours


EMPTY_HISTORY: BoolArray = np.zeros(0, dtype=np.bool_)


def empty(step_hours: float) -> ZoneHistory:
    return ZoneHistory(EMPTY_HISTORY, step_hours, None)


def resample(
    times: FloatArray,
    values: BoolArray,
    *,
    now: float,
    since: float,
    step_seconds: float,
    max_samples: int = MAX_SAMPLES,
) -> ZoneHistory:
    """The change points (`times` ascending, `values`) from `since` to `now` on a grid of
    `step_seconds` ending at `now`. Points after `now` are not known yet and are ignored."""
    if step_seconds <= 0:
        raise ValueError(f"step_seconds must be > 0, got {step_seconds!r}")
    step_hours = step_seconds / 3600.0
    known = int(np.searchsorted(times, now + TIME_TOLERANCE, side="right"))
    if known == 0:
        return empty(step_hours)
    times, values = times[:known], values[:known]
    count = sample_count(float(times[0]), now=now, since=since, step_seconds=step_seconds)
    if count == 0:
        return empty(step_hours)
    count = min(count, max_samples)
    grid = now - step_seconds * np.arange(count - 1, -1, -1, dtype=np.float64)
    index = np.searchsorted(times, grid + TIME_TOLERANCE, side="right") - 1
    history = values[np.clip(index, 0, None)]
    changes = np.flatnonzero(values[1:] != values[:-1])
    began = float(times[int(changes[-1]) + 1]) if len(changes) else float(times[0])
    current_run = max(0.0, now - max(began, float(grid[0]))) / 3600.0
    return ZoneHistory(history, step_hours, current_run)


def sample_count(first_seen: float, *, now: float, since: float, step_seconds: float) -> int:
    """How many grid samples a window from `since` (no earlier than the first change point,
    seen at `first_seen`) to `now` holds."""
    first = max(since, first_seen)
    if first > now + TIME_TOLERANCE:
        return 0
    return math.floor((now - first + TIME_TOLERANCE) / step_seconds) + 1


def narrow(full: ZoneHistory, count: int) -> ZoneHistory:
    """The last `count` samples of `full`: the same grid seen from a later window start
    (its current run is cut at that start too)."""
    if count >= len(full.history):
        return full
    span = (count - 1) * full.step_hours
    run = full.current_run_hours
    return ZoneHistory(
        full.history[len(full.history) - count :],
        full.step_hours,
        None if run is None else min(run, span),
    )


def summary(zone: str, history: ZoneHistory) -> dict[str, object]:
    """What a policy saw of one zone, for `skyctl show` and the job's events."""
    stats = availability_stats(history.history, history.step_hours)
    return {
        "zone": zone,
        "observed_hours": round(stats.observed_hours, 3),
        "up_fraction": round(stats.fraction, 4),
        "mean_up_hours": round(stats.mean_up_hours, 3),
        "mean_outage_hours": round(stats.mean_down_hours, 3),
        "step_seconds": round(history.step_hours * 3600.0, 3),
    }


def summary_text(facts: dict[str, object]) -> str:
    """E.g. `zone aws/us-east-1/us-east-1a: 7.0 days, up 92 %, mean run 5.1 h, mean outage
    0.3 h` (or `no history`)."""
    hours = float(str(facts.get("observed_hours") or 0.0))
    if hours <= 0:
        return f"zone {facts.get('zone')}: no history"
    span = f"{hours / 24:.1f} days" if hours >= 24 else f"{hours:.1f} h"
    up = float(str(facts.get("up_fraction") or 0.0))
    text = f"zone {facts.get('zone')}: {span}, up {up * 100:.0f} %"
    mean_up = float(str(facts.get("mean_up_hours") or 0.0))
    mean_down = float(str(facts.get("mean_outage_hours") or 0.0))
    if mean_up > 0:
        text += f", mean run {_hours(mean_up)}"
    text += f", mean outage {_hours(mean_down)}" if mean_down > 0 else ", no outage seen"
    return text


def _hours(value: float) -> str:
    return f"{value:.1f} h" if value >= 1 else f"{value:.2f} h"
