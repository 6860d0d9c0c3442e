"""Deadline-aware placement of a job with spot choices: the daemon's side of skyd.policy.

Pure functions: a job's history and its feasible candidates become a PolicyState; the
policy's Decision becomes one concrete candidate (or "wait"). Progress is the time the
job spent in RUNNING over all attempts (its checkpoints carry it across preemptions);
the changeover the policy charges covers launch, setup and work lost since the last
checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from skyd.market.availability_grid import ZoneHistory, summary, summary_text
from skyd.optimizer import CandidateView
from skyd.policy import Decision, PolicyState, SpotPolicy, Target, ZoneMarket
from skyd.spec import TaskSpec
from skyd.spec.task import RecoveryStrategy
from skyd.store.records import EventRecord, InstanceRecord, JobRecord

ASSUMED_PROGRESS_CAP = 0.9


@dataclass(frozen=True, slots=True)
class RecoveryChoice:
    view: CandidateView | None  # None: wait (the policy chose to go idle)
    reason: str
    recheck_after_seconds: float | None = None


def zone_id(view: CandidateView) -> str:
    offer = view.candidate.offer
    return f"{offer.cloud}/{offer.region}/{offer.zone}"


def region_id(view: CandidateView) -> str:
    offer = view.candidate.offer
    return f"{offer.cloud}/{offer.region}"


def running_seconds(events: Sequence[EventRecord], now: float) -> float:
    """Time spent in RUNNING across every attempt, from the job's state events."""
    total = 0.0
    started: float | None = None
    for event in events:
        if event.state is None:
            continue
        if event.state == "RUNNING" and started is None:
            started = event.at
        elif event.state != "RUNNING" and started is not None:
            total += event.at - started
            started = None
    if started is not None:
        total += now - started
    return total


def market_seconds(events: Sequence[EventRecord], now: float) -> tuple[float, float]:
    """(spot, on-demand) seconds the job ran, by the market of each attempt's placement."""
    spot = on_demand = 0.0
    market_is_spot = False
    started: float | None = None
    for event in events:
        placement = event.data.get("placement") if event.data else None
        if isinstance(placement, dict) and "spot" in placement:
            market_is_spot = bool(placement["spot"])
        if event.state is None:
            continue
        if event.state == "RUNNING" and started is None:
            started = event.at
        elif event.state != "RUNNING" and started is not None:
            if market_is_spot:
                spot += event.at - started
            else:
                on_demand += event.at - started
            started = None
    if started is not None:
        if market_is_spot:
            spot += now - started
        else:
            on_demand += now - started
    return spot, on_demand


def zone_market(
    zone: str, region: str, available: bool, spot_price: float, history: ZoneHistory | None
) -> ZoneMarket:
    """What the policy sees of one spot zone: its market now and its recorded availability.

    The live market has the last word on the sample at now: should it disagree with the
    recorded history (a source not yet recorded), the current run is taken as just begun.
    """
    if history is None:
        return ZoneMarket(zone=zone, region=region, available=available, spot_price=spot_price)
    step = history.step_hours
    if len(history.history) == 0:  # never observed: no history, on the same grid
        return ZoneMarket(zone, region, available, spot_price, history_step_hours=step)
    samples = history.history
    current_run = history.current_run_hours
    if bool(samples[-1]) != available:
        samples = np.append(samples[:-1], available)
        current_run = None  # counted from the grid: one sample
    return ZoneMarket(
        zone=zone,
        region=region,
        available=available,
        spot_price=spot_price,
        history=samples,
        history_step_hours=history.step_hours,
        current_run=current_run,
    )


def policy_driven(spec: TaskSpec, job: JobRecord) -> bool:
    """Jobs whose spot/on-demand timing the deadline policy owns (not the global plan)."""
    return (
        spec.recovery_strategy == RecoveryStrategy.DEADLINE
        and job.deadline is not None
        and spec.estimated_hours() is not None
    )


@dataclass(frozen=True, slots=True)
class RunningOn:
    """Where a running job's instance is, from its placement record."""

    target: Target
    offer_key: str
    hourly_price: float

    @property
    def spot_zone(self) -> str | None:
        """The spot zone it runs in (None: on demand)."""
        return self.target.zone if self.target.is_spot else None

    @staticmethod
    def of(placement: Mapping[str, Any] | None) -> RunningOn | None:
        """None when the record does not say where (an older record, a cluster)."""
        if not placement:
            return None
        try:
            cloud, region = str(placement["cloud"]), str(placement["region"])
            key, price = str(placement["offer_key"]), float(placement["hourly_price"])
            spot, zone = bool(placement["spot"]), placement.get("zone")
        except (KeyError, TypeError, ValueError):
            return None
        if spot and not zone:
            return None
        target = (
            Target.spot(f"{cloud}/{region}/{zone}", f"{cloud}/{region}")
            if spot
            else Target.on_demand(f"{cloud}/{region}")
        )
        return RunningOn(target, key, price)

    def add_to(
        self,
        zones: dict[str, ZoneMarket],
        on_demand: dict[str, float],
        history: Callable[[str], ZoneHistory] | None,
    ) -> None:
        """Put the running offering into the policy's view as up: its instance is alive (the
        watch step just saw it), though its own instance may fill a quota or a block may
        keep new launches off it."""
        region = str(self.target.region)
        if self.target.is_on_demand:
            on_demand.setdefault(region, self.hourly_price)
            return
        zone = str(self.target.zone)
        held = zones.get(zone)
        price = self.hourly_price if held is None else held.spot_price
        zones[zone] = zone_market(
            zone, region, True, price, None if history is None else history(self.offer_key)
        )


def policy_state(
    *,
    views: Sequence[CandidateView],
    unavailable: frozenset[str],
    job_hours: float,
    done_hours: float,
    deadline_hours: float,
    elapsed_hours: float,
    changeover_hours: float,
    step_hours: float,
    checkpoint_region: str | None,
    history: Callable[[str], ZoneHistory] | None = None,
    running: RunningOn | None = None,
    last_zone: str | None = None,
) -> PolicyState | None:
    """The policy's view of the job's choices; None when there is nothing to choose between.

    `history(offer_key)`: that offering's recorded spot availability on the policy's grid
    (one step for every zone, ending now); each zone is represented by its cheapest spot
    offering, and shows that offering's history. `running`: where the job runs now (None:
    nowhere); its own offering counts as up, whatever blocks or quotas its instance
    leaves on it. `last_zone`: the spot zone the job last ran in (a price spike there is
    waited out rather than another zone's price paid).
    """
    zones: dict[str, ZoneMarket] = {}
    on_demand: dict[str, float] = {}
    for view in views:
        if view.excluded is not None and view.candidate.key not in unavailable:
            continue
        price = view.hourly_price_micros / 1_000_000
        if view.candidate.spot:
            zid = zone_id(view)
            held = zones.get(zid)
            if held is None or price < held.spot_price:
                zones[zid] = zone_market(
                    zid,
                    region_id(view),
                    view.candidate.key not in unavailable,
                    price,
                    None if history is None else history(view.candidate.offer.key),
                )
        elif view.excluded is None:
            rid = region_id(view)
            on_demand[rid] = min(price, on_demand.get(rid, price))
    if running is not None:
        running.add_to(zones, on_demand, history)
    if not zones or not on_demand:
        return None
    # Progress is measured by time in RUNNING, the work by the user's estimate. The
    # estimate is trusted until the job outruns it (stretching it earlier, from 90 % of
    # it, inflated the work left near the end up to twice over: a 48 h job at 0.95 was
    # sent to on demand by the safety net with two hours of slack left); a job that
    # still runs past it is never "done": take it as 90 % through.
    if done_hours >= job_hours:
        job_hours = done_hours / ASSUMED_PROGRESS_CAP
    return PolicyState(
        job_hours=job_hours,
        done_hours=done_hours,
        deadline_hours=deadline_hours,
        elapsed_hours=elapsed_hours,
        changeover_hours=changeover_hours,
        current=Target.idle() if running is None else running.target,
        zones=tuple(sorted(zones.values(), key=lambda z: (z.spot_price, z.zone))),
        on_demand_prices=on_demand,
        step_hours=step_hours,
        checkpoint_region=checkpoint_region,
        last_zone=last_zone,
    )


def history_facts(state: PolicyState) -> list[dict[str, object]]:
    """What availability history each zone showed the policy (for the job's events)."""
    return [
        summary(z.zone, ZoneHistory(z.history, z.history_step_hours, z.current_run))
        for z in state.zones
    ]


def history_lines(facts: Sequence[dict[str, object]]) -> list[str]:
    """One line per zone: `zone Z: 7.0 days, up 92 %, mean run 5.1 h, mean outage 0.30 h`."""
    if not any(float(str(f.get("observed_hours") or 0)) > 0 for f in facts):
        return ["no spot availability history"]
    return [summary_text(f) for f in facts]


def history_text(lines: Sequence[str]) -> str:
    """The lines as one clause of an event's reason."""
    return "history: " + "; ".join(lines)


def choose(
    policy: SpotPolicy,
    state: PolicyState,
    views: Sequence[CandidateView],
    decided: Decision | None = None,
) -> RecoveryChoice:
    """The candidate the policy's decision names. `decided`: a decision the policy made
    moments ago, while the job still ran, that this placement carries out (asked again
    from idle, it could differ: the simulator switches at once, with no idle in between);
    should its target not be launchable now, the policy is asked afresh."""
    if decided is not None:
        carried = _pick(policy, decided, views)
        if carried.view is not None or decided.target.is_idle:
            return carried
    return _pick(policy, policy.decide(state), views)


def _pick(policy: SpotPolicy, decision: Decision, views: Sequence[CandidateView]) -> RecoveryChoice:
    target = decision.target
    recheck = (
        None if decision.recheck_after_hours is None else decision.recheck_after_hours * 3600.0
    )
    feasible = [v for v in views if v.excluded is None]
    if target.is_spot:
        picks = [v for v in feasible if v.candidate.spot and zone_id(v) == target.zone]
    elif target.is_on_demand:
        picks = [v for v in feasible if not v.candidate.spot and region_id(v) == target.region]
    else:
        return RecoveryChoice(None, f"{policy.name}: wait ({decision.reason})", recheck)
    if not picks:
        return RecoveryChoice(None, f"{policy.name}: {target} is not launchable now", recheck)
    best = min(picks, key=lambda v: (v.hourly_price_micros, v.candidate.key))
    return RecoveryChoice(best, f"{policy.name}: {target} ({decision.reason})", recheck)


# After a preemption, the scopes each recovery strategy avoids for a while (the lost
# instance in, scopes out). A new strategy adds an entry here, not a branch at the call.
def _the_spot_offering(lost: InstanceRecord) -> list[str]:
    return [f"{lost.cloud}/{lost.region}/{lost.zone}/{lost.instance_type}/spot"]


def _the_region(lost: InstanceRecord) -> list[str]:
    return [f"{lost.cloud}/{lost.region}"]


AVOID_AFTER_PREEMPTION: dict[RecoveryStrategy, Callable[[InstanceRecord], list[str]]] = {
    RecoveryStrategy.FAILOVER: _the_spot_offering,
    RecoveryStrategy.EAGER_NEXT_REGION: _the_region,
}


def avoid_after_preemption(strategy: RecoveryStrategy, lost: InstanceRecord) -> list[str]:
    """The scopes to block after `lost` was preempted, under `strategy`."""
    avoid = AVOID_AFTER_PREEMPTION.get(strategy)
    return [] if avoid is None else avoid(lost)
