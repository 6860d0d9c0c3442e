"""Records a spot policy reads (PolicyState) and returns (Decision); no I/O, no clock."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from skyd.policy.availability import (
    AvailabilityStats,
    availability_stats,
    current_run_hours,
    settled_history,
)


class TargetKind(enum.StrEnum):
    IDLE = "idle"
    SPOT = "spot"
    ON_DEMAND = "on_demand"


@dataclass(frozen=True, slots=True)
class Target:
    """Where the job runs: nowhere, spot in a zone, or on demand in a region."""

    kind: TargetKind
    zone: str | None = None
    region: str | None = None

    @staticmethod
    def idle() -> Target:
        return IDLE

    @staticmethod
    def spot(zone: str, region: str) -> Target:
        return Target(TargetKind.SPOT, zone, region)

    @staticmethod
    def on_demand(region: str) -> Target:
        return Target(TargetKind.ON_DEMAND, None, region)

    @property
    def is_idle(self) -> bool:
        return self.kind is TargetKind.IDLE

    @property
    def is_spot(self) -> bool:
        return self.kind is TargetKind.SPOT

    @property
    def is_on_demand(self) -> bool:
        return self.kind is TargetKind.ON_DEMAND

    def __str__(self) -> str:
        if self.kind is TargetKind.SPOT:
            return f"spot:{self.zone}"
        if self.kind is TargetKind.ON_DEMAND:
            return f"on_demand:{self.region}"
        return "idle"


IDLE = Target(TargetKind.IDLE)

_NO_HISTORY: npt.NDArray[np.bool_] = np.zeros(0, dtype=np.bool_)


@dataclass(frozen=True, slots=True)
class ZoneMarket:
    """What is known about one spot zone right now.

    `history` is the observed availability sampled every `history_step_hours`, oldest
    first, its last element being the sample in force now (the daemon resamples its
    recorded signals onto such a grid; the simulator passes a view of the trace).
    """

    zone: str
    region: str
    available: bool
    spot_price: float
    history: npt.NDArray[np.bool_] = field(default_factory=lambda: _NO_HISTORY)
    history_step_hours: float = 0.0
    # Optional precomputed summaries of `history` (the simulator keeps prefix sums);
    # when None they are computed from `history` on demand.
    settled: AvailabilityStats | None = None
    current_run: float | None = None

    def settled_stats(self) -> AvailabilityStats:
        """Availability statistics of the history before the current run began."""
        if self.settled is not None:
            return self.settled
        return availability_stats(settled_history(self.history), self.history_step_hours)

    def run_hours(self) -> float:
        """How long the current state (up or down) has lasted, as far as history shows."""
        if self.current_run is not None:
            return self.current_run
        return current_run_hours(self.history, self.history_step_hours)


@dataclass(frozen=True, slots=True)
class PolicyState:
    """Everything a policy may look at, in hours and dollars.

    `elapsed_hours` runs from the job's submission; the deadline is at
    `deadline_hours` after it. `step_hours` is the longest the caller may wait before
    asking again on its own (the simulator's tick; the daemon's reconcile interval):
    safety margins account for it. `overhead_left_hours` is the part of the current
    instance's changeover not yet over. Moving the checkpoint from
    `checkpoint_region` to another region costs `migration_cost` dollars and
    `migration_hours` of extra changeover.
    """

    job_hours: float
    done_hours: float
    deadline_hours: float
    elapsed_hours: float
    changeover_hours: float
    current: Target
    zones: tuple[ZoneMarket, ...]
    on_demand_prices: Mapping[str, float]
    step_hours: float = 0.0
    overhead_left_hours: float = 0.0
    checkpoint_region: str | None = None
    last_zone: str | None = None
    migration_cost: float = 0.0
    migration_hours: float = 0.0

    @property
    def remaining_hours(self) -> float:
        """Work left to do."""
        return max(0.0, self.job_hours - self.done_hours)

    @property
    def time_left_hours(self) -> float:
        """Time left until the deadline."""
        return self.deadline_hours - self.elapsed_hours

    @property
    def slack_hours(self) -> float:
        """Time that may still be lost (idle or changing over) without missing the deadline."""
        return self.time_left_hours - self.remaining_hours

    @property
    def finished(self) -> bool:
        return self.remaining_hours <= 1e-9

    def zone_market(self, zone: str) -> ZoneMarket | None:
        return next((z for z in self.zones if z.zone == zone), None)

    def changeover_to(self, region: str | None) -> float:
        """Hours of changeover a launch in `region` costs (the checkpoint may have to move)."""
        moving = (
            region is not None
            and self.checkpoint_region is not None
            and region != self.checkpoint_region
            and self.done_hours > 0
        )
        return self.changeover_hours + (self.migration_hours if moving else 0.0)

    def migration_cost_to(self, region: str | None) -> float:
        moving = (
            region is not None
            and self.checkpoint_region is not None
            and region != self.checkpoint_region
            and self.done_hours > 0
        )
        return self.migration_cost if moving else 0.0

    def on_demand_region(self) -> str:
        """Where on-demand should run: the checkpoint's region, else the cheapest one."""
        if self.current.is_on_demand and self.current.region is not None:
            return self.current.region
        if self.checkpoint_region is not None and self.checkpoint_region in self.on_demand_prices:
            return self.checkpoint_region
        if self.current.is_spot and self.current.region in self.on_demand_prices:
            return str(self.current.region)
        if not self.on_demand_prices:
            return self.zones[0].region
        return min(self.on_demand_prices, key=lambda r: (self.on_demand_prices[r], r))


@dataclass(frozen=True, slots=True)
class Decision:
    """Where the job should run from now on.

    `recheck_after_hours`: the policy's answer cannot change before this much time has
    passed unless a zone's availability changes or the job is preempted (None: only
    then). The daemon may sleep that long; the simulator skips those ticks.
    """

    target: Target
    recheck_after_hours: float | None = None
    reason: str = ""

    def keeps(self, current: Target) -> bool:
        return self.target == current


class SpotPolicy(Protocol):
    """A deadline-aware placement rule. Pure: same state in, same decision out."""

    @property
    def name(self) -> str: ...

    @property
    def safe(self) -> bool:
        """True when it never misses a deadline an on-demand start could still meet."""
        ...

    def decide(self, state: PolicyState) -> Decision: ...
