"""Reference policies: always on-demand, greedy, and Uniform Progress (single and multi zone).

Uniform Progress is the rule of "Can't Be Late" (NSDI '24) as its authors' artifact
implements it (the threshold strategy with the hysteresis condition). With C the job
length, R the time from submission to the deadline, d the changeover delay, cp(t) the
progress made and ep(t) = t·C/R the expected progress, at every decision:

1. spot available: spot (taken even when behind; a running spot instance is kept);
   otherwise idle;
2. cp(t) < ep(t) (behind) and no spot: on demand;
3. on demand: kept while spot is unavailable, and while cp(t) < ep(t + 2d) even when
   spot is back; so it switches back to spot only once progress allows;
4. idle or on demand with ceil(C(t) + 2d) >= floor(R(t)): on demand (safety net);
5. ceil(C(t) + d) >= floor(R(t)): a spot instance past its changeover is kept until
   preempted, anything else goes on demand.

Rounding in 4 and 5 is to the decision interval `step_hours` (the artifact's tick), so
deciding once per step is safe; every new instance pays the changeover d.
"""

from __future__ import annotations

import math

from skyd.policy.state import IDLE, Decision, PolicyState, Target, ZoneMarket

# Hours are tick counts times a float tick: compare with a tolerance far below a tick.
EPS = 1e-9


def step_margin(state: PolicyState) -> float:
    """Extra slack needed because the next decision may come one step later."""
    return max(0.0, state.step_hours - state.changeover_hours)


def on_demand_target(state: PolicyState) -> Target:
    return Target.on_demand(state.on_demand_region())


def spot_still_available(state: PolicyState) -> bool:
    """The current placement is spot and its zone still has capacity."""
    if not state.current.is_spot or state.current.zone is None:
        return False
    market = state.zone_market(state.current.zone)
    return market is not None and market.available


def spot_entry_is_safe(state: PolicyState, zone: ZoneMarket) -> bool:
    """After paying this zone's changeover, one more changeover to on-demand still fits."""
    need = state.changeover_to(zone.region) + state.changeover_hours + step_margin(state)
    return state.slack_hours >= need - EPS


def rotated_zones(state: PolicyState) -> list[ZoneMarket]:
    """Zones in failover order: the one after the last zone used first, wrapping around."""
    zones = list(state.zones)
    names = [z.zone for z in zones]
    if state.last_zone in names:
        i = names.index(state.last_zone)
        return zones[i + 1 :] + zones[: i + 1]
    return zones


class AlwaysOnDemand:
    """Never uses spot: the cost reference every saving is measured against."""

    name = "on_demand"
    safe = True

    def decide(self, state: PolicyState) -> Decision:
        if state.finished:
            return Decision(IDLE, reason="done")
        if state.current.is_on_demand:
            return Decision(state.current, reason="on-demand")
        return Decision(on_demand_target(state), reason="on-demand")


class Greedy:
    """Spot whenever it is available and safe; on-demand only at the last safe moment.

    Entering spot needs room for two changeovers (spot now, on-demand after a
    preemption); idle waits until one changeover is all the slack left.
    """

    name = "greedy"
    safe = True

    def __init__(self, multi_zone: bool = True) -> None:
        self.multi_zone = multi_zone

    def decide(self, state: PolicyState) -> Decision:
        if state.finished:
            return Decision(IDLE, reason="done")
        if spot_still_available(state):
            return Decision(state.current, reason="stay on spot")
        zones = state.zones if self.multi_zone else state.zones[:1]
        open_zones = [z for z in zones if z.available and spot_entry_is_safe(state, z)]
        if open_zones:
            best = min(
                open_zones,
                key=lambda z: z.spot_price + state.migration_cost_to(z.region) / 10.0,
            )
            return Decision(Target.spot(best.zone, best.region), reason="spot available")
        if state.current.is_on_demand:
            return Decision(state.current, reason="on-demand to the end")
        # Waiting one more step must still leave one on-demand changeover.
        last_moment = state.changeover_hours + state.step_hours
        if state.slack_hours < last_moment - EPS:
            return Decision(on_demand_target(state), reason="last safe moment")
        return Decision(
            IDLE,
            recheck_after_hours=state.slack_hours - last_moment,
            reason="wait for spot",
        )


def _floor_to(hours: float, step: float) -> float:
    return math.floor(hours / step + EPS) * step if step > 0 else hours


def _ceil_to(hours: float, step: float) -> float:
    return math.ceil(hours / step - EPS) * step if step > 0 else hours


class UniformProgress:
    """Uniform Progress (Can't Be Late, NSDI '24); `multi_zone` takes spot in any zone."""

    safe = True

    def __init__(self, multi_zone: bool = False) -> None:
        self.multi_zone = multi_zone
        self.name = "up_multi" if multi_zone else "up"

    def _spot_zone(self, state: PolicyState) -> ZoneMarket | None:
        """The zone spot runs in: the current one while it lasts, else the first with capacity."""
        if spot_still_available(state):
            return state.zone_market(str(state.current.zone))
        zones = state.zones if self.multi_zone else state.zones[:1]
        return next((z for z in zones if z.available), None)

    def decide(self, state: PolicyState) -> Decision:
        if state.finished:
            return Decision(IDLE, reason="done")
        d = state.changeover_hours
        gap = state.step_hours
        rate = state.job_hours / state.deadline_hours
        t = state.elapsed_hours
        done = state.done_hours
        current = state.current
        zone = self._spot_zone(state)
        spot = None if zone is None else Target.spot(zone.zone, zone.region)
        on_spot = spot_still_available(state)
        behind = done < t * rate - EPS
        held = done < (t + 2 * d) * rate - EPS  # not yet ep(t + 2d) ahead
        target: Target = spot if spot is not None else IDLE
        reason = "spot available" if spot is not None else "ahead: wait"
        if behind and spot is None:
            target, reason = on_demand_target(state), "behind uniform progress"
        if current.is_on_demand and (spot is None or held):
            target, reason = current, "keep on-demand"
        time_left = _floor_to(state.time_left_hours, gap)
        left = state.remaining_hours
        if _ceil_to(left + 2 * d, gap) >= time_left - EPS and not on_spot:
            target, reason = on_demand_target(state), "safety net"
        if _ceil_to(left + d, gap) >= time_left - EPS:
            if on_spot and state.overhead_left_hours < EPS:
                target, reason = current, "keep spot until preempted"
            else:
                target, reason = on_demand_target(state), "deadline"
        return Decision(target, self._recheck(state, target, held), reason)

    def _recheck(self, state: PolicyState, target: Target, held: bool) -> float | None:
        """A lower bound on when the answer can change with no availability change."""
        d = state.changeover_hours
        rate = state.job_hours / state.deadline_hours
        slack = state.slack_hours
        if target.is_idle:
            until = min(state.done_hours / rate - state.elapsed_hours, slack - 2 * d)
        elif target.is_on_demand:
            if not held or rate >= 1.0:
                return None
            # On demand progress grows at 1/h after the changeover, ep at C/R per hour.
            gap = (state.elapsed_hours + 2 * d) * rate - state.done_hours
            overhead = state.overhead_left_hours if target == state.current else d
            until = (gap + overhead) / (1.0 - rate)
        else:
            # Spot past its changeover is kept until preempted (an availability change).
            overhead = state.overhead_left_hours if target == state.current else d
            if overhead <= EPS:
                return None
            until = min(overhead, slack - d)
        return max(0.0, until - 2 * state.step_hours)
