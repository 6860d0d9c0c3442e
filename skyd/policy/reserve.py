"""The slack reserve: how much slack the rest of a job keeps to go on using spot."""

from __future__ import annotations

from dataclasses import dataclass, replace

from skyd.policy.availability import AvailabilityStats, availability_stats, settled_history
from skyd.policy.baselines import step_margin
from skyd.policy.outages import outage_history
from skyd.policy.state import PolicyState


@dataclass(frozen=True, slots=True)
class ReserveSizing:
    """`SlackReserve`'s reserve: `reserve_per_cycle` changeovers per expected up/down cycle
    of the remaining work (cycles ** `reserve_power`), cycles from the zones' history
    blended with `prior_cycle_hours` (trusted half-way after `prior_hours` of history)
    and never counted shorter than `min_cycle` changeovers, plus Uniform Progress'
    safety net (two changeovers and a step's margin)."""

    reserve_per_cycle: float
    prior_cycle_hours: float
    prior_hours: float
    min_cycle: float
    reserve_power: float

    def stats(self, state: PolicyState) -> AvailabilityStats:
        """Up/down statistics the reserve plans with (several zones: see below)."""
        zones = state.zones
        if len(zones) == 1:
            return zones[0].settled_stats()
        # Several zones: the job can run while any of them is up, so outages are the
        # union's; but it runs in one zone at a time, and each preemption there costs a
        # changeover: spot runs are the zones' own (weighted by how often each is up).
        history = outage_history(state)
        if len(history) == 0:
            return AvailabilityStats(0.0, 0.0, 0.0, 0.0)
        union = availability_stats(settled_history(history), zones[0].history_step_hours)
        own = [z.settled_stats() for z in zones]
        weight = sum(o.fraction for o in own)
        if weight <= 0:
            return union
        mean_up = sum(o.fraction * o.mean_up_hours for o in own) / weight
        # Observed for as long as the zones have been: the union's own settled history
        # is empty while some zone has been up all along, which would leave the cycle
        # to the prior however much of the zones' runs has been seen.
        seen = max(union.observed_hours, max(o.observed_hours for o in own))
        return replace(union, mean_up_hours=mean_up, observed_hours=seen)

    def cycle_hours(self, stats: AvailabilityStats) -> float:
        """The observed up/down cycle, blended with the prior while history is short."""
        seen = stats.observed_hours
        observed = stats.mean_up_hours + stats.mean_down_hours
        if observed <= 0:
            return self.prior_cycle_hours
        weight = seen / (seen + self.prior_hours)
        return weight * observed + (1 - weight) * self.prior_cycle_hours

    def counted_cycle(self, stats: AvailabilityStats, d: float) -> float:
        """The cycle length the reserve plans with: observed, but never below min_cycle."""
        return max(self.cycle_hours(stats), self.min_cycle * d)

    def hours(self, state: PolicyState, stats: AvailabilityStats) -> float:
        """The reserve for the work left."""
        return self.hours_for(state, stats, state.remaining_hours)

    def hours_for(self, state: PolicyState, stats: AvailabilityStats, left: float) -> float:
        """The reserve for `left` hours of work: the safety net plus the planned changeovers."""
        d = state.changeover_hours
        cycles = left / self.counted_cycle(stats, d)
        planned = self.reserve_per_cycle * d * float(cycles**self.reserve_power)
        return 2 * d + step_margin(state) + planned
