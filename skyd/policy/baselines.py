"""Reference policies: always on-demand, greedy, and Uniform Progress (single and multi zone).

Uniform Progress follows "Can't Be Late" (NSDI'24). With C the job length, R the
time from submission to the deadline, d the changeover delay, cp(t) the progress
made and ep(t) = t·C/R the expected progress:

1. idle and cp(t) < ep(t): on-demand, to catch up;
2. spot available: take it (even when behind) and stay until preempted;
3. on on-demand: stay until cp(t) >= ep(t + 2d) (hysteresis);
4. not on spot and R(t) < C(t) + 2d: on-demand until the end (safety net).

When decisions are only taken every `step` hours (ticks longer than d) the safety net
is widened by `step - d`, so that waiting one more step can never use up the margin;
with step <= d it is the paper's rule unchanged.
"""

from __future__ import annotations

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


class UniformProgress:
    """Uniform Progress (Can't Be Late, NSDI'24); `multi_zone` adds zone failover."""

    safe = True

    def __init__(self, multi_zone: bool = False) -> None:
        self.multi_zone = multi_zone
        self.name = "uniform_progress_multi" if multi_zone else "uniform_progress"

    def _expected(self, state: PolicyState, at: float) -> float:
        return at * state.job_hours / state.deadline_hours

    def _release_after(self, state: PolicyState, overhead: float) -> float | None:
        """Hours on on-demand until cp >= ep(t + 2d), given `overhead` hours of changeover."""
        rate = state.job_hours / state.deadline_hours
        if rate >= 1.0:
            return None
        d = state.changeover_hours
        gap = self._expected(state, state.elapsed_hours + 2 * d) - state.done_hours
        return max(0.0, (gap + overhead) / (1.0 - rate))

    def decide(self, state: PolicyState) -> Decision:
        if state.finished:
            return Decision(IDLE, reason="done")
        d = state.changeover_hours
        od = on_demand_target(state)
        safety_net = 2 * d + step_margin(state)
        on_spot = spot_still_available(state)
        if not on_spot and state.slack_hours < safety_net - EPS:
            return Decision(od, reason="safety net")
        current = state.current
        if current.is_on_demand and state.done_hours < (
            self._expected(state, state.elapsed_hours + 2 * d) - EPS
        ):
            return Decision(
                current,
                recheck_after_hours=self._release_after(state, state.overhead_left_hours),
                reason="hysteresis",
            )
        if on_spot:
            return Decision(current, reason="stay on spot until preempted")
        zones = rotated_zones(state) if self.multi_zone else list(state.zones[:1])
        for zone in zones:
            if zone.available and spot_entry_is_safe(state, zone):
                return Decision(Target.spot(zone.zone, zone.region), reason="take spot")
        if state.done_hours < self._expected(state, state.elapsed_hours) - EPS:
            return Decision(
                od,
                recheck_after_hours=self._release_after(state, state.changeover_to(od.region)),
                reason="behind uniform progress",
            )
        rate = state.job_hours / state.deadline_hours
        until_behind = state.done_hours / rate - state.elapsed_hours if rate > 0 else None
        until_net = state.slack_hours - safety_net
        recheck = until_net if until_behind is None else min(until_behind, until_net)
        return Decision(IDLE, recheck_after_hours=max(0.0, recheck), reason="ahead: wait")
