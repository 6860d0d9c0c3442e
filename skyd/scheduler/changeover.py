"""The changeover the spot policy plans with: the configured one, or what the daemon measured
of its recent launches when that is longer. Pure (the launches are read by
skyd.scheduler.changeover_log).

A changeover is the time a new instance costs before the job makes progress again. The
daemon measures it for every attempt that reached RUNNING: from the attempt's PROVISIONING
event (the launch is asked for) to its RUNNING event (its run is seen, which is where the
job's progress is counted from again), so it holds the launch call, the boot, the login,
the setup and the daemon's own polling. On the clouds whose checkpoints come back over SSH,
half the sync interval is added: the work an interruption loses since the last sync, on
average. The configured figure is a floor: planning with too long a changeover costs a
little slack, with too short a one misses deadlines.

Which launches (skyd.scheduler.changeover_log): the newest 20 on the clouds the job may
run on, pooled. Per cloud, because a launch's time is mostly its cloud's API and images (a
local slot starts at once, a VM boots for minutes) and a cloud sees enough launches to fill
the window, where one offering or one region might see one a week. Per job it would be fairer
to the job's own setup, but a job has no history before its first launch, which is when
its plan matters most. A high quantile (p90) rather than the mean: one slow boot in ten
is what the plan must survive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

QUANTILE = 0.9


def _duration(hours: float) -> str:
    """`0.31 h`; under three minutes in seconds (`42 s`), where hundredths of an hour blur."""
    return f"{hours:.2f} h" if hours >= 0.05 else f"{hours * 3600.0:.0f} s"


@dataclass(frozen=True, slots=True)
class Changeover:
    """The changeover used (`hours`) and where it came from, for the job's events."""

    hours: float
    configured_hours: float
    measured_hours: float | None = None  # None: no launch measured
    launches: int = 0
    lost_seconds: float = 0.0  # work since the last checkpoint sync, in measured_hours
    quantile: float = QUANTILE

    @property
    def measured(self) -> bool:
        """Whether the measured figure is the one used (it exceeds the configured one)."""
        return self.measured_hours is not None and self.measured_hours > self.configured_hours

    def text(self) -> str:
        """`changeover 0.31 h (p90 of 14 launches; configured 0.20 h)`."""
        if self.measured_hours is None:
            return f"changeover {_duration(self.hours)} (configured; no launch measured yet)"
        of = f"p{round(self.quantile * 100)} of {self.launches} launch"
        of += "" if self.launches == 1 else "es"
        if self.lost_seconds > 0:
            of += f" + {self.lost_seconds:g} s since the last checkpoint sync"
        if self.measured:
            return (
                f"changeover {_duration(self.hours)} "
                f"({of}; configured {_duration(self.configured_hours)})"
            )
        return (
            f"changeover {_duration(self.hours)} "
            f"(configured; {of}: {_duration(self.measured_hours)})"
        )

    def figures(self) -> dict[str, object]:
        """The same for a placement record."""
        return {
            "hours": round(self.hours, 6),
            "configured_hours": self.configured_hours,
            "measured_hours": None
            if self.measured_hours is None
            else round(self.measured_hours, 6),
            "launches": self.launches,
        }


def estimate(
    seconds: Sequence[float],
    *,
    configured_hours: float,
    lost_seconds: float = 0.0,
    quantile: float = QUANTILE,
) -> Changeover:
    """The changeover from measured launch-to-run `seconds`: their `quantile` (an observed
    value, the one at or above it) and `lost_seconds` of work an interruption loses, never
    under `configured_hours`; with nothing measured, the configured figure."""
    if not seconds:
        return Changeover(configured_hours, configured_hours, quantile=quantile)
    measured = float(np.quantile(np.asarray(seconds, dtype=np.float64), quantile, method="higher"))
    hours = (measured + lost_seconds) / 3600.0
    return Changeover(
        max(configured_hours, hours), configured_hours, hours, len(seconds), lost_seconds, quantile
    )


def configured(hours: float) -> Changeover:
    """The configured changeover alone (no launch record to measure from)."""
    return Changeover(hours, hours)
