"""skyd's own policy: spend slack greedily, but keep a reserve sized to the rest of the job.

Slack (time to deadline minus work left) is the budget every policy spends: idle
time and changeovers consume it, running on spot or on demand does not. Greedy spends
it all waiting for spot and then finishes on demand, blind to spot; Uniform Progress
buys on-demand early to stay on a straight line and pays a changeover each time it
drifts across it. This policy:

* above a slack reserve, waits for spot: idle through outages, spot whenever it is
  up (with several regions, it idles a while for the checkpoint's region rather than
  paying egress at once, and picks the zone with the lowest expected cost per useful
  hour); but one outage may only take `allowance` times its share of the slack over
  the reserve (that slack shared between the outages still expected), so a long
  outage is bridged on demand before it drains what later short ones need;
* sizes the reserve to what the endgame needs to keep using spot: `reserve_per_cycle`
  changeovers per expected up/down cycle of the remaining work (cycle lengths from the
  zone's own availability history, blended with a prior while history is short, and
  never counted shorter than `min_cycle` changeovers: flickers do not each need a
  reserve), plus Uniform Progress' safety net;
* below the reserve, bridges each outage on demand, to its end;
* leaves on-demand for returning spot at once above the reserve, and below it only
  once the spot run has lasted `spot_patience` changeovers, stretched as slack gets
  scarce (spot runs are heavy-tailed: most are short, one that has lasted tends to
  last), and only with room for the changeover back;
* never enters spot priced above on demand, and leaves a spot instance whose price
  spikes above it for on demand while the slack has room for that changeover;
* has Uniform Progress' safety net: off spot with less than two changeovers of slack
  (plus a step's margin), on-demand to the end. No deadline is ever missed.

The constants are chosen by leave-one-zone-out cross-validation on the shipped V100
traces (`python -m bench.spot.cv`; figures in bench/spot/README.md).

Everything it reads from the history is computed up to the last availability change,
so between two changes its answer only moves with time, and it says when
(`recheck_after_hours`, never late).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from skyd.policy.availability import AvailabilityStats, availability_stats, settled_history
from skyd.policy.baselines import (
    EPS,
    on_demand_target,
    rotated_zones,
    spot_entry_is_safe,
    spot_still_available,
    step_margin,
)
from skyd.policy.state import IDLE, Decision, PolicyState, Target, ZoneMarket


class SlackReserve:
    """Greedy while slack is above a reserve sized to the endgame; bridges outages below it."""

    name = "skyd"
    safe = True

    def __init__(
        self,
        reserve_per_cycle: float = 5.0,
        patience: float = 0.0,
        prior_cycle_hours: float = 4.0,
        prior_hours: float = 24.0,
        spot_patience: float = 2.0,
        migrate_patience: float = 8.0,
        scarcity_power: float = 0.5,
        allowance: float = 5.0,
        min_cycle: float = 20.0,
        reserve_power: float = 0.75,
    ) -> None:
        # Changeovers of slack kept per expected up/down cycle of the remaining work.
        self.reserve_per_cycle = reserve_per_cycle
        # Outage age (in changeovers) idled through before bridging it on demand.
        self.patience = patience
        # Cycle length assumed for a zone with no history yet, and how much
        # observed history it takes to trust the zone's own figure half-way.
        self.prior_cycle_hours = prior_cycle_hours
        self.prior_hours = prior_hours
        # Age (in changeovers) a returning spot run must reach before on-demand is left.
        self.spot_patience = spot_patience
        # Outage age (in changeovers) of the checkpoint's region worth waiting out
        # rather than paying egress to move, while the slack is above the reserve.
        self.migrate_patience = migrate_patience
        # How much more a spot run must prove itself as slack gets scarce.
        self.scarcity_power = scarcity_power
        # Above the reserve, the slack over it is shared out between the outages still
        # expected: one is waited out for at most `allowance` times its share.
        self.allowance = allowance
        # Shortest cycle (in changeovers) the reserve counts: flickers shorter than that
        # are ridden through on spot or bridged once, not paid for one by one.
        self.min_cycle = min_cycle
        # The reserve grows as cycles ** reserve_power (1: in proportion to them).
        self.reserve_power = reserve_power

    def _stats(self, state: PolicyState) -> AvailabilityStats:
        zones = state.zones
        if len(zones) == 1:
            return zones[0].settled_stats()
        # Several zones: the job can run while any of them is up, so outages are the
        # union's; but it runs in one zone at a time, and each preemption there costs a
        # changeover: spot runs are the zones' own (weighted by how often each is up).
        shortest = min(len(z.history) for z in zones)
        if shortest == 0:
            return AvailabilityStats(0.0, 0.0, 0.0, 0.0)
        history = np.logical_or.reduce([z.history[len(z.history) - shortest :] for z in zones])
        union = availability_stats(settled_history(history), zones[0].history_step_hours)
        own = [z.settled_stats() for z in zones]
        weight = sum(o.fraction for o in own)
        if weight <= 0:
            return union
        mean_up = sum(o.fraction * o.mean_up_hours for o in own) / weight
        return replace(union, mean_up_hours=mean_up)

    def cycle_hours(self, stats: AvailabilityStats) -> float:
        seen = stats.observed_hours
        observed = stats.mean_up_hours + stats.mean_down_hours
        if observed <= 0:
            return self.prior_cycle_hours
        weight = seen / (seen + self.prior_hours)
        return weight * observed + (1 - weight) * self.prior_cycle_hours

    def counted_cycle(self, stats: AvailabilityStats, d: float) -> float:
        """The cycle length the reserve plans with: observed, but never below min_cycle."""
        return max(self.cycle_hours(stats), self.min_cycle * d)

    def reserve_hours(self, state: PolicyState, stats: AvailabilityStats) -> float:
        return self._reserve_for(state, stats, state.remaining_hours)

    def _reserve_for(self, state: PolicyState, stats: AvailabilityStats, left: float) -> float:
        d = state.changeover_hours
        cycles = left / self.counted_cycle(stats, d)
        planned = self.reserve_per_cycle * d * float(cycles**self.reserve_power)
        return 2 * d + step_margin(state) + planned

    def _outage_hours(self, state: PolicyState) -> float:
        return min(z.run_hours() for z in state.zones)

    def _expected_up_hours(self, zone: ZoneMarket) -> float:
        stats = zone.settled_stats()
        seen = stats.observed_hours
        weight = seen / (seen + self.prior_hours)
        prior_up = self.prior_cycle_hours / 2
        return weight * stats.mean_up_hours + (1 - weight) * prior_up

    def _pick_zone(self, state: PolicyState, candidates: list[ZoneMarket]) -> ZoneMarket:
        d = state.changeover_hours

        def cost_per_useful_hour(zone: ZoneMarket) -> float:
            # A run that has lasted tends to last (runs are heavy-tailed): expect at
            # least as much again as its age.
            expected = max(self._expected_up_hours(zone), zone.run_hours())
            run = min(expected, state.remaining_hours + d)
            useful = max(run - d, 0.1 * d)
            return (zone.spot_price * run + state.migration_cost_to(zone.region)) / useful

        return min(candidates, key=cost_per_useful_hour)

    def _wait_for_home(self, state: PolicyState, zone: ZoneMarket, spare: float) -> float | None:
        """Hours worth idling for the checkpoint's region to come back instead of moving."""
        if state.migration_cost_to(zone.region) <= 0:
            return None
        home = [z for z in state.zones if z.region == state.checkpoint_region]
        if not home:
            return None
        waited = min(z.run_hours() for z in home)
        wait = self.migrate_patience * state.changeover_hours - waited
        return wait if 0 < wait <= spare else None

    def decide(self, state: PolicyState) -> Decision:
        if state.finished:
            return Decision(IDLE, reason="done")
        d = state.changeover_hours
        margin = step_margin(state)
        safety_net = 2 * d + margin
        if spot_still_available(state):
            running = state.zone_market(str(state.current.zone))
            pricier = running is not None and running.spot_price > _on_demand_price(state, running)
            # Spot priced above on demand (a price spike): on demand is cheaper per hour
            # from now on, if the slack still has room for its changeover.
            if pricier and state.slack_hours >= safety_net + d - EPS:
                return Decision(on_demand_target(state), reason="spot above on-demand price")
            return Decision(state.current, reason="stay on spot until preempted")
        if state.slack_hours < safety_net - EPS:
            return Decision(on_demand_target(state), reason="safety net")
        stats = self._stats(state)
        reserve = self.reserve_hours(state, stats)
        slack = state.slack_hours
        current = state.current
        open_zones = [
            z
            for z in rotated_zones(state)
            if z.available
            and z.spot_price <= _on_demand_price(state, z)
            and spot_entry_is_safe(state, z)
        ]
        if open_zones:
            zone = self._pick_zone(state, open_zones)
            target = Target.spot(zone.zone, zone.region)
            if not current.is_on_demand:
                wait = self._wait_for_home(state, zone, slack - reserve)
                if wait is not None:
                    return Decision(
                        IDLE, recheck_after_hours=wait, reason="wait: moving costs egress"
                    )
                return Decision(target, reason="take spot")
            # Leaving on-demand costs this changeover and, likely, one back later.
            if slack < 3 * d + margin - EPS:
                return Decision(current, reason="no room to leave on-demand")
            if slack <= reserve + EPS:
                # Short spot runs are common: below the reserve, let it prove itself.
                lasted = zone.run_hours()
                if lasted < self._wanted_run(state, reserve, slack) - EPS:
                    return Decision(
                        current,
                        recheck_after_hours=self._until_proven(state, stats, reserve, lasted),
                        reason="spot just back",
                    )
            return Decision(target, reason="spot is back")
        if current.is_on_demand:
            # An outage being bridged is bridged to its end: stopping half-way would
            # pay a changeover again if spot stays away.
            return Decision(current, reason="bridge the outage")
        waited = self._outage_hours(state)
        if slack > reserve + EPS:
            # Idle: slack falls one hour per hour; the reserve stays put.
            cap = math.inf
            if math.isfinite(self.allowance):
                outages = max(1.0, state.remaining_hours / self.counted_cycle(stats, d))
                k = self.allowance / outages
                # The share falls as the slack does: waited + x = k * (slack - x - reserve).
                cap = min(cap, (k * (slack - reserve) - waited) / (1 + k))
            if cap > EPS:
                recheck = min(slack - reserve, cap)
                return Decision(IDLE, recheck_after_hours=recheck, reason="above reserve: wait")
            return Decision(on_demand_target(state), reason="long outage: bridge")
        patience = self.patience * d
        if waited < patience - EPS and slack - (patience - waited) >= safety_net - EPS:
            return Decision(
                IDLE, recheck_after_hours=patience - waited, reason="short outage? wait"
            )
        return Decision(on_demand_target(state), reason="bridge the outage")

    def _wanted_run(self, state: PolicyState, reserve: float, slack: float) -> float:
        """How long a returning spot run must have lasted before on-demand is left for it."""
        scarcity = float((reserve / max(slack, EPS)) ** self.scarcity_power)
        return self.spot_patience * state.changeover_hours * max(1.0, scarcity)

    def _until_proven(
        self, state: PolicyState, stats: AvailabilityStats, reserve: float, lasted: float
    ) -> float:
        """Hours on demand until the spot run counts as proven (a lower bound, so never late).

        On demand the slack holds while the reserve shrinks with the work done, so the
        wanted run length falls as the run's age grows: bisect for the crossing.
        """
        overhead = state.overhead_left_hours
        if overhead > 0:
            # During the changeover the slack shrinks too; look again when it is over.
            return overhead
        slack = state.slack_hours
        left = state.remaining_hours

        def proven(h: float) -> bool:
            shrunk = self._reserve_for(state, stats, max(0.0, left - h))
            if shrunk < slack:
                return True
            return lasted + h >= self._wanted_run(state, shrunk, slack) - EPS

        low, high = 0.0, max(0.0, self._wanted_run(state, reserve, slack) - lasted)
        for _ in range(40):
            middle = (low + high) / 2
            if proven(middle):
                high = middle
            else:
                low = middle
        return low


def _on_demand_price(state: PolicyState, zone: ZoneMarket) -> float:
    """On demand in the zone's region (else the cheapest region): what spot must undercut."""
    prices = state.on_demand_prices
    if zone.region in prices:
        return prices[zone.region]
    return min(prices.values()) if prices else float("inf")
