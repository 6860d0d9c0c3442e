"""Replays one job through a spot policy in exact time (the model of skyd.policy.optimum).

Time is counted in units of a lattice step g (seconds) that divides the probe
intervals, the changeover delay and the job length, so nothing is rounded to a probe
interval: d = 0.2 h is 0.2 h on 195 s or 10-minute probes. The loop asks the policy at
a row boundary, applies its decision, then jumps straight to the next boundary at which
anything can change (a zone's availability or spot price changes, the policy's
`recheck_after_hours` is due, the deadline passes); a changeover ending or the work
being done inside a row is accounted exactly. `every_row=True` asks at every boundary
instead (tests use it to prove the jumps change nothing).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from skyd.market.traces import TraceSet
from skyd.policy.availability import AvailabilityStats
from skyd.policy.optimum import LatticeMarket
from skyd.policy.state import IDLE, PolicyState, SpotPolicy, Target, ZoneMarket

# How much observed history a policy is shown (the simulator passes a view, no copy).
HISTORY_HOURS = 7 * 24.0


class ZoneLists(NamedTuple):
    available: list[bool]
    spot_price: list[float]
    next_change: list[int]  # first later row whose availability differs
    next_price: list[int]  # first later row whose spot price differs
    price_cum: list[float]  # $ spent on spot from row 0 to the start of each row
    run_start: list[int]
    up_before: list[int]  # available units before each row
    rises_before: list[int]
    falls_before: list[int]


@dataclass(frozen=True, slots=True)
class PreparedZones:
    """A zone set of a trace on the exact time lattice, as the simulator and the DP read it."""

    label: str
    names: tuple[str, ...]
    regions: tuple[str, ...]  # distinct regions, in first-seen order
    market: LatticeMarket
    times: list[int]  # row starts (and the end of the last row), in units
    nominal_tick_hours: float
    # The longest probe interval: a policy is asked again at most this long after it
    # wants to be (the first boundary at or after its recheck time), so it plans with it.
    step_hours: float
    lists: tuple[ZoneLists, ...]

    @property
    def unit_seconds(self) -> int:
        return self.market.unit_seconds

    @property
    def unit_hours(self) -> float:
        return self.market.unit_hours


def lattice_seconds(
    tick_seconds: float,
    *lengths_hours: float,
    timestamps: npt.NDArray[np.float64] | None = None,
) -> int:
    """The lattice step: gcd of the nominal probe interval and the lengths, in whole seconds.

    With the set's probe `timestamps`, the largest divisor of that step on which no two
    probes fall together: irregular probes a few seconds apart (a probe retried) would
    otherwise collapse into one row, and a divisor keeps the lengths exact.
    """
    step = max(1, round(tick_seconds))
    for hours in lengths_hours:
        step = math.gcd(step, max(1, round(hours * 3600)))
    if timestamps is None or len(timestamps) < 2:
        return step
    rel = np.asarray(timestamps, dtype=np.float64) - float(timestamps[0])
    for unit in sorted((u for u in range(1, step + 1) if step % u == 0), reverse=True):
        if bool(np.all(np.diff(np.rint(rel / unit)) > 0)):
            return unit
    return 1  # dates are whole seconds and strictly increasing: 1 s always separates them


def hours_to_units(hours: float, unit_seconds: int) -> int:
    """A length on the lattice; it must be a whole number of units (lattice_seconds makes it so)."""
    units = hours * 3600 / unit_seconds
    whole = round(units)
    if abs(units - whole) > 1e-6 * max(1.0, units):
        raise ValueError(f"{hours} h is not a multiple of the {unit_seconds} s lattice")
    return int(whole)


def snap_times(timestamps: npt.NDArray[np.float64], tick_seconds: float, unit: int) -> list[int]:
    """Row start times on the lattice (relative to the first row), plus the last row's end.

    Each probe moves by at most half a unit (7.5 s on the V100 set); probes that would
    collapse are an error rather than a silent merge (`lattice_seconds` given the
    timestamps picks a unit that separates them).
    """
    rel = (timestamps - timestamps[0]) / unit
    snapped = np.rint(rel).astype(np.int64)
    end = snapped[-1] + max(1, round(tick_seconds / unit))
    times = np.append(snapped, end)
    if len(times) > 1 and not bool(np.all(np.diff(times) > 0)):
        row = int(np.argmin(np.diff(times) > 0))
        raise ValueError(
            f"probes at rows {row} and {row + 1} are closer than the {unit} s lattice; "
            "give lattice_seconds the timestamps to pick a finer lattice"
        )
    return [int(t) for t in times]


def prepare(traces: TraceSet, zones: list[str], label: str, unit_seconds: int) -> PreparedZones:
    chosen = traces.select(zones)
    regions: list[str] = []
    for zone in chosen.zones.values():
        if zone.region not in regions:
            regions.append(zone.region)
    # On demand is bought per region: at the cheapest on-demand price of its zones.
    on_demand = tuple(
        min(z.on_demand_price for z in chosen.zones.values() if z.region == r) for r in regions
    )
    available = np.stack([z.available for z in chosen.zones.values()])
    prices = np.stack([z.spot_price for z in chosen.zones.values()])
    tick = traces.tick_seconds or 3600.0
    times = snap_times(traces.timestamps, tick, unit_seconds)
    rows = available.shape[1]
    unit_h = unit_seconds / 3600.0
    durations = np.diff(np.asarray(times, dtype=np.int64))
    market = LatticeMarket(
        available=available,
        spot_price=prices,
        times=np.asarray(times, dtype=np.int64),
        zone_region=tuple(regions.index(z.region) for z in chosen.zones.values()),
        on_demand_price=on_demand,
        unit_seconds=unit_seconds,
    )
    lists = []
    for z in range(len(zones)):
        flags = available[z]
        flips = np.flatnonzero(np.diff(flags.astype(np.int8)) != 0) + 1
        flips = np.append(flips, rows)
        next_change = flips[np.searchsorted(flips, np.arange(rows), side="right")]
        moves = np.append(np.flatnonzero(np.diff(prices[z]) != 0) + 1, rows)
        next_price = moves[np.searchsorted(moves, np.arange(rows), side="right")]
        changed = np.ones(rows, dtype=bool)
        changed[1:] = flags[1:] != flags[:-1]
        run_start = np.maximum.accumulate(np.where(changed, np.arange(rows), 0))
        zero = np.zeros(1, dtype=np.int64)
        price_cum = np.concatenate([[0.0], np.cumsum(prices[z] * durations * unit_h)])
        up_before = np.concatenate([zero, np.cumsum(np.where(flags, durations, 0))])
        rises = np.concatenate([zero, np.cumsum(changed & flags)])
        falls = np.concatenate([zero, np.cumsum(changed & ~flags)])
        lists.append(
            ZoneLists(
                flags.tolist(),
                prices[z].tolist(),
                next_change.tolist(),
                next_price.tolist(),
                price_cum.tolist(),
                run_start.tolist(),
                up_before.tolist(),
                rises.tolist(),
                falls.tolist(),
            )
        )
    return PreparedZones(
        label,
        tuple(chosen.zones),
        tuple(regions),
        market,
        times,
        tick / 3600.0,
        int(durations.max()) * unit_h,
        tuple(lists),
    )


def zone_market(
    zones: PreparedZones, index: int, region: str, row: int, first_row: int
) -> ZoneMarket:
    """What a policy sees of one zone at `row`, history starting at `first_row`.

    Statistics are over the history before the current run (so they only change when
    availability does), by duration, read off prefix sums.
    """
    unit_h = zones.unit_hours
    times = zones.times
    z = zones.lists[index]
    start = z.run_start[row]
    settled_end = max(start, first_row)
    span = times[settled_end] - times[first_row]
    if span > 0:
        up = z.up_before[settled_end] - z.up_before[first_row]
        first_up = z.available[first_row]
        # Runs that begin inside the window, plus the one already running at its start.
        ups = z.rises_before[settled_end] - z.rises_before[first_row + 1] + int(first_up)
        downs = z.falls_before[settled_end] - z.falls_before[first_row + 1] + int(not first_up)
        settled = AvailabilityStats(
            fraction=up / span,
            mean_up_hours=up * unit_h / ups if ups else 0.0,
            mean_down_hours=(span - up) * unit_h / downs if downs else 0.0,
            observed_hours=span * unit_h,
        )
    else:
        settled = AvailabilityStats(0.0, 0.0, 0.0, 0.0)
    return ZoneMarket(
        zones.names[index],
        region,
        z.available[row],
        z.spot_price[row],
        zones.market.available[index, first_row : row + 1],
        zones.nominal_tick_hours,
        settled=settled,
        current_run=(times[row] - times[max(start, first_row)]) * unit_h,
    )


@dataclass(frozen=True, slots=True)
class Job:
    """One simulated job: start row, lengths in lattice units, the real deadline, egress cost."""

    start: int
    job_units: int
    deadline_seconds: float
    changeover_units: int
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
    policy: SpotPolicy, zones: PreparedZones, job: Job, every_row: bool = False
) -> RunResult:
    """Run `job` under `policy`; a missed deadline is finished on demand (and flagged)."""
    market = zones.market
    g = zones.unit_seconds
    unit_h = zones.unit_hours
    times = zones.times
    names = zones.names
    zone_regions = [zones.regions[r] for r in market.zone_region]
    od_price = dict(zip(zones.regions, market.on_demand_price, strict=True))
    lists = zones.lists
    rows = market.rows
    history_rows = int(HISTORY_HOURS / zones.nominal_tick_hours)
    work = job.job_units
    k = job.changeover_units
    deadline = job.deadline_seconds / g  # in units, not rounded
    origin = times[job.start]
    result = RunResult()
    row = job.start
    t = 0
    done = 0
    overhead = 0
    current: Target = IDLE
    current_index = -1
    checkpoint: str | None = None
    last_zone: str | None = None
    # The window's start stays put, so history only changes when availability does.
    lo = max(0, job.start - history_rows)
    deadline_row = bisect_left(times, origin + deadline)
    while True:
        if t >= deadline - 1e-9 or row >= rows:
            _finish_on_demand(
                result, current, overhead, work - done, k, od_price, checkpoint, unit_h
            )
            result.finish_hours = t + (overhead if current.is_on_demand else k) + work - done
            result.finish_hours *= unit_h
            result.missed_deadline = True
            break
        if current.is_spot and not lists[current_index].available[row]:
            current, current_index, overhead = IDLE, -1, 0
            result.preemptions += 1
        state = PolicyState(
            job_hours=work * unit_h,
            done_hours=done * unit_h,
            deadline_hours=job.deadline_seconds / 3600.0,
            elapsed_hours=t * unit_h,
            changeover_hours=k * unit_h,
            current=current,
            zones=tuple(zone_market(zones, i, zone_regions[i], row, lo) for i in range(len(names))),
            on_demand_prices=od_price,
            step_hours=zones.step_hours,
            overhead_left_hours=overhead * unit_h,
            checkpoint_region=checkpoint,
            last_zone=last_zone,
            migration_cost=job.migration_cost,
        )
        decision = policy.decide(state)
        result.policy_calls += 1
        target = decision.target
        if target != current:
            index = -1
            if target.is_spot:
                index = names.index(str(target.zone)) if target.zone in names else -1
                if index < 0 or not lists[index].available[row]:
                    target, index = IDLE, -1  # a launch into no capacity fails at once
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
        # The next boundary at which something can change.
        nxt = row + 1
        if not every_row:
            # Availability flips and spot price changes (a policy may avoid spot priced
            # above on demand) are the market's events.
            nxt = min(min(min(z.next_change[row], z.next_price[row]) for z in lists), deadline_row)
            nxt = min(nxt, rows)
            if decision.recheck_after_hours is not None:
                due = origin + t + decision.recheck_after_hours / unit_h - 1e-9
                nxt = min(nxt, bisect_left(times, due))
            nxt = max(nxt, row + 1)
        t_next = times[nxt] - origin
        if current.is_idle:
            result.idle_hours += (t_next - t) * unit_h
        else:
            finish_at = t + overhead + work - done
            end = min(finish_at, t_next)
            _pay(result, zones, current, current_index, od_price, origin + t, origin + end)
            if finish_at <= t_next:
                done = work
                result.finish_hours = finish_at * unit_h
                result.missed_deadline = finish_at > deadline + 1e-9
                break
            done += max(0, t_next - t - overhead)
            overhead = max(0, overhead - (t_next - t))
        t, row = t_next, nxt
    result.cost = result.spot_cost + result.on_demand_cost + result.migration_cost
    return result


def _pay(
    result: RunResult,
    zones: PreparedZones,
    current: Target,
    index: int,
    od_price: dict[str, float],
    start: int,
    end: int,
) -> None:
    """Bill the running instance from `start` to `end` (absolute units)."""
    hours = (end - start) * zones.unit_hours
    if current.is_on_demand:
        result.on_demand_cost += od_price[str(current.region)] * hours
        result.on_demand_hours += hours
        return
    result.spot_cost += _spot_cum(zones, index, end) - _spot_cum(zones, index, start)
    result.spot_hours += hours


def _spot_cum(zones: PreparedZones, index: int, at: int) -> float:
    """Dollars a spot instance in zone `index` would cost from row 0 until time `at`."""
    times = zones.times
    z = zones.lists[index]
    row = min(bisect_right(times, at) - 1, len(z.spot_price) - 1)
    return z.price_cum[row] + z.spot_price[row] * (at - times[row]) * zones.unit_hours


def _finish_on_demand(
    result: RunResult,
    current: Target,
    overhead: int,
    left: int,
    k: int,
    od_price: dict[str, float],
    checkpoint: str | None,
    unit_h: float,
) -> None:
    """Past the deadline: account the rest of the job on demand, so costs stay comparable."""
    if current.is_on_demand:
        region, units = str(current.region), overhead + left
    else:
        region = checkpoint if checkpoint in od_price else min(od_price, key=od_price.__getitem__)
        units = k + left
        result.changeovers += 1
    result.on_demand_hours += units * unit_h
    result.on_demand_cost += od_price[str(region)] * units * unit_h
