"""Replays one job through a spot policy on a trace, event by event, under the optimum's tick model.

The tick model is the one stated in skyd.policy.optimum. The loop asks the policy at
a tick, applies its decision, then jumps straight to the next tick at which anything
can change: a zone's availability flips, the policy's `recheck_after_hours` expires,
the job finishes, or the deadline comes. `every_tick=True` asks at every tick instead
(used by tests to prove the jumps change nothing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from skyd.market.traces import TraceSet
from skyd.policy.availability import AvailabilityStats
from skyd.policy.optimum import TickMarket, available_run_lengths
from skyd.policy.state import IDLE, PolicyState, SpotPolicy, Target, ZoneMarket

# How much observed history a policy is shown (the simulator passes a view, no copy).
HISTORY_HOURS = 7 * 24.0


class ZoneLists(NamedTuple):
    available: list[bool]
    spot_price: list[float]
    next_change: list[int]
    price_sum: list[float]
    run_start: list[int]
    ones_before: list[int]
    rises_before: list[int]
    falls_before: list[int]


@dataclass(frozen=True, slots=True)
class PreparedZones:
    """A zone set of a trace in the arrays the simulator and the DP read."""

    label: str
    names: tuple[str, ...]
    regions: tuple[str, ...]  # distinct regions, in first-seen order
    market: TickMarket
    next_change: npt.NDArray[np.int64]  # (zones, rows): first later row that differs
    price_sum: npt.NDArray[np.float64]  # (zones, rows + 1): cumulative $ per tick
    run_lengths: npt.NDArray[np.int64]
    # Prefix sums that give a history window's statistics in O(1) (see zone_market).
    run_start: npt.NDArray[np.int64]  # (zones, rows): first row of the run holding at row
    ones_before: npt.NDArray[np.int64]  # (zones, rows + 1): available rows before row
    rises_before: npt.NDArray[np.int64]  # (zones, rows + 1): up-runs starting before row
    falls_before: npt.NDArray[np.int64]  # (zones, rows + 1): down-runs starting before row
    # The same per-zone series as Python lists: the per-call reads are scalar, and list
    # indexing is several times cheaper than numpy scalar indexing.
    lists: tuple[ZoneLists, ...]

    @property
    def tick_hours(self) -> float:
        return self.market.tick_hours


def prepare(traces: TraceSet, zones: list[str], label: str) -> PreparedZones:
    chosen = traces.select(zones)
    regions: list[str] = []
    for zone in chosen.zones.values():
        if zone.region not in regions:
            regions.append(zone.region)
    on_demand = tuple(
        min(z.on_demand_price for z in chosen.zones.values() if z.region == r) for r in regions
    )
    available = np.stack([z.available for z in chosen.zones.values()])
    prices = np.stack([z.spot_price for z in chosen.zones.values()])
    tick_hours = traces.tick_seconds / 3600.0
    rows = available.shape[1]
    next_change = np.empty_like(available, dtype=np.int64)
    for i in range(available.shape[0]):
        flips = np.flatnonzero(np.diff(available[i].astype(np.int8)) != 0) + 1
        flips = np.append(flips, rows)
        next_change[i] = flips[np.searchsorted(flips, np.arange(rows), side="right")]
    market = TickMarket(
        available=available,
        spot_price=prices,
        zone_region=tuple(regions.index(z.region) for z in chosen.zones.values()),
        on_demand_price=on_demand,
        tick_hours=tick_hours,
    )
    price_sum = np.concatenate(
        [np.zeros((len(zones), 1)), np.cumsum(prices * tick_hours, axis=1)], axis=1
    )
    runs = np.stack([available_run_lengths(available[z]) for z in range(len(zones))])
    flags = available.astype(np.int64)
    changed = np.ones_like(available, dtype=bool)
    changed[:, 1:] = available[:, 1:] != available[:, :-1]
    index = np.where(changed, np.arange(rows)[None, :], 0)
    run_start = np.maximum.accumulate(index, axis=1)
    rises = (changed & available).astype(np.int64)
    falls = (changed & ~available).astype(np.int64)
    zero = np.zeros((len(zones), 1), dtype=np.int64)
    ones_before = np.concatenate([zero, np.cumsum(flags, axis=1)], axis=1)
    rises_before = np.concatenate([zero, np.cumsum(rises, axis=1)], axis=1)
    falls_before = np.concatenate([zero, np.cumsum(falls, axis=1)], axis=1)
    lists = tuple(
        ZoneLists(
            available[z].tolist(),
            prices[z].tolist(),
            next_change[z].tolist(),
            price_sum[z].tolist(),
            run_start[z].tolist(),
            ones_before[z].tolist(),
            rises_before[z].tolist(),
            falls_before[z].tolist(),
        )
        for z in range(len(zones))
    )
    return PreparedZones(
        label,
        tuple(chosen.zones),
        tuple(regions),
        market,
        next_change,
        price_sum,
        runs,
        run_start,
        ones_before,
        rises_before,
        falls_before,
        lists,
    )


def zone_market(
    zones: PreparedZones, index: int, region: str, row: int, first_row: int
) -> ZoneMarket:
    """What a policy sees of one zone at `row`, history starting at `first_row`.

    The statistics of the history before the current run are read off prefix sums;
    they equal availability_stats(settled_history(history)) (a test checks it).
    """
    market = zones.market
    dt = market.tick_hours
    z = zones.lists[index]
    start = z.run_start[row]
    settled_end = max(start, first_row)
    count = settled_end - first_row
    if count > 0:
        ones = z.ones_before[settled_end] - z.ones_before[first_row]
        first_up = z.available[first_row]
        # Runs that begin inside the window, plus the one already running at its start.
        ups = z.rises_before[settled_end] - z.rises_before[first_row + 1] + int(first_up)
        downs = z.falls_before[settled_end] - z.falls_before[first_row + 1] + int(not first_up)
        settled = AvailabilityStats(
            fraction=ones / count,
            mean_up_hours=ones * dt / ups if ups else 0.0,
            mean_down_hours=(count - ones) * dt / downs if downs else 0.0,
            observed_hours=count * dt,
        )
    else:
        settled = AvailabilityStats(0.0, 0.0, 0.0, 0.0)
    return ZoneMarket(
        zones.names[index],
        region,
        z.available[row],
        z.spot_price[row],
        market.available[index, first_row : row + 1],
        dt,
        settled=settled,
        current_run=(row + 1 - max(start, first_row)) * dt,
    )


@dataclass(frozen=True, slots=True)
class Job:
    """One simulated job: start row, lengths in ticks, and the checkpoint's egress cost."""

    start: int
    job_ticks: int
    deadline_ticks: int
    changeover_ticks: int
    migration_cost: float = 0.0


@dataclass(slots=True)
class RunResult:
    cost: float = 0.0
    spot_cost: float = 0.0
    on_demand_cost: float = 0.0
    migration_cost: float = 0.0
    spot_hours: float = 0.0
    on_demand_hours: float = 0.0
    idle_hours: float = 0.0
    changeovers: int = 0
    preemptions: int = 0
    migrations: int = 0
    policy_calls: int = 0
    finish_hours: float = 0.0
    missed_deadline: bool = False


def simulate(
    policy: SpotPolicy, zones: PreparedZones, job: Job, every_tick: bool = False
) -> RunResult:
    """Run `job` under `policy`; a missed deadline is finished on demand (and flagged)."""
    market = zones.market
    dt = market.tick_hours
    names = zones.names
    zone_regions = [zones.regions[r] for r in market.zone_region]
    od_price = dict(zip(zones.regions, market.on_demand_price, strict=True))
    lists = zones.lists
    history_ticks = int(HISTORY_HOURS / dt)
    k = job.changeover_ticks
    work = job.job_ticks
    deadline = job.deadline_ticks
    result = RunResult()
    t = 0
    done = 0
    overhead = 0
    current: Target = IDLE
    current_index = -1
    checkpoint: str | None = None
    last_zone: str | None = None
    # The window's start stays put, so history only changes when availability does.
    lo = max(0, job.start - history_ticks)
    while done < work:
        row = job.start + t
        if t >= deadline or row >= market.rows:
            _finish_on_demand(result, current, overhead, work - done, k, od_price, checkpoint, dt)
            result.finish_hours = _finish_time(t, current, overhead, work - done, k) * dt
            result.missed_deadline = True
            break
        if current.is_spot and not lists[current_index].available[row]:
            current, current_index, overhead = IDLE, -1, 0
            result.preemptions += 1
        state = PolicyState(
            job_hours=work * dt,
            done_hours=done * dt,
            deadline_hours=deadline * dt,
            elapsed_hours=t * dt,
            changeover_hours=k * dt,
            current=current,
            zones=tuple(zone_market(zones, i, zone_regions[i], row, lo) for i in range(len(names))),
            on_demand_prices=od_price,
            step_hours=dt,
            overhead_left_hours=overhead * dt,
            checkpoint_region=checkpoint,
            last_zone=last_zone,
            migration_cost=job.migration_cost,
        )
        decision = policy.decide(state)
        result.policy_calls += 1
        target = decision.target
        if target != current:
            if target.is_spot:
                index = names.index(str(target.zone)) if target.zone in names else -1
                if index < 0 or not lists[index].available[row]:
                    target, index = IDLE, -1  # a launch into no capacity fails at once
            else:
                index = -1
            if not target.is_idle:
                region = zone_regions[index] if target.is_spot else str(target.region)
                if done > 0 and checkpoint is not None and region != checkpoint:
                    result.migration_cost += job.migration_cost
                    result.migrations += 1
                checkpoint = region
                result.changeovers += 1
                overhead = k
                if target.is_spot:
                    last_zone = target.zone
            else:
                overhead = 0
            current, current_index = target, index
        # Jump to the next tick at which something can change.
        step = deadline - t
        if not every_tick:
            if decision.recheck_after_hours is not None:
                step = min(step, max(1, math.floor(decision.recheck_after_hours / dt + 1e-9)))
            step = min(step, min(z.next_change[row] for z in lists) - row)
        else:
            step = 1
        if not current.is_idle:
            step = min(step, overhead + work - done)
        step = max(1, min(step, market.rows - row))
        if current.is_spot:
            sums = lists[current_index].price_sum
            cost = sums[row + step] - sums[row]
            result.spot_cost += cost
            result.spot_hours += step * dt
        elif current.is_on_demand:
            cost = od_price[str(current.region)] * dt * step
            result.on_demand_cost += cost
            result.on_demand_hours += step * dt
        else:
            result.idle_hours += step * dt
        if not current.is_idle:
            done += max(0, step - overhead)
            overhead = max(0, overhead - step)
        t += step
        if done >= work:
            result.finish_hours = t * dt
    result.cost = result.spot_cost + result.on_demand_cost + result.migration_cost
    return result


def _finish_time(t: int, current: Target, overhead: int, left: int, k: int) -> int:
    return t + (overhead if current.is_on_demand else k) + left


def _finish_on_demand(
    result: RunResult,
    current: Target,
    overhead: int,
    left: int,
    k: int,
    od_price: dict[str, float],
    checkpoint: str | None,
    dt: float,
) -> None:
    """Past the deadline: account the rest of the job on demand, so costs stay comparable."""
    if current.is_on_demand:
        region, ticks = str(current.region), overhead + left
    else:
        region = checkpoint if checkpoint in od_price else min(od_price, key=od_price.__getitem__)
        ticks = k + left
        result.changeovers += 1
    result.on_demand_cost += od_price[str(region)] * dt * ticks
    result.on_demand_hours += ticks * dt
