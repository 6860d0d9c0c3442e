"""Runs the sweep: every policy × zone set × start × job fraction × changeover, plus the optimum."""

from __future__ import annotations

import bisect
import hashlib
import math
import multiprocessing
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from bench.spot.engine import (
    Job,
    PreparedZones,
    hours_to_units,
    lattice_seconds,
    prepare,
    simulate,
)
from skyd.market.traces import TraceSet, load_trace_set
from skyd.policy import POLICIES
from skyd.policy.optimum import LatticeMarket, optimal_costs

# Where optimum results are kept between runs (they depend on the trace and job only).
CACHE_DIR = Path(os.environ.get("BENCH_SPOT_CACHE", Path.home() / ".cache" / "skyd-bench-spot"))

# Policies that, given a single zone, decide exactly as another one does.
SINGLE_ZONE_TWINS = {"up_multi": "up"}


@dataclass(frozen=True, slots=True)
class SweepConfig:
    traces_dir: str
    zone_sets: tuple[tuple[str, ...], ...]
    job_hours: float = 48.0
    job_fractions: tuple[float, ...] = (0.6, 0.7, 0.8, 0.9, 0.95)
    changeover_hours: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)
    starts: int = 300
    seed: int = 0
    policies: tuple[str, ...] = field(default_factory=lambda: tuple(POLICIES))
    checkpoint_gb: float = 50.0
    egress_per_gb: float = 0.02
    workers: int = 2
    # Also compute the best single zone in hindsight (only meaningful with several zones).
    hindsight_zone: bool = False


@dataclass(frozen=True, slots=True)
class Lengths:
    """The job's lengths on the lattice (exact: the lattice divides them) and real deadlines."""

    unit_seconds: int
    job: int
    changeover: int
    deadline_seconds: tuple[float, ...]


def lengths(
    traces: TraceSet, job_hours: float, fractions: Sequence[float], changeover: float
) -> Lengths:
    """The lattice for these lengths on `traces`, one that keeps every probe its own row
    (`lattice_seconds`)."""
    unit = lattice_seconds(traces.tick_seconds, job_hours, changeover, timestamps=traces.timestamps)
    return Lengths(
        unit,
        hours_to_units(job_hours, unit),
        hours_to_units(changeover, unit),
        tuple(job_hours * 3600 / f for f in fractions),
    )


def zone_set_label(traces: TraceSet, zones: Sequence[str]) -> str:
    return f"{traces.name}/{'+'.join(zones)}"


def start_rows(times: Sequence[int], horizon: int, count: int, seed: int, label: str) -> list[int]:
    """`count` start rows whose deadline fits the trace; the same for every policy, fraction, d."""
    last = bisect.bisect_left(list(times), times[-1] - horizon)  # first row too late to start
    if last <= 0:
        raise ValueError(
            f"{label}: the trace is too short for the longest deadline; "
            "use a smaller --job-hours or larger --job-fraction values"
        )
    # The label is folded into the seed so each zone set gets its own start points.
    rng = np.random.default_rng([seed, *label.encode()])
    return sorted(int(s) for s in rng.integers(0, last, size=count))


def run_task(task: tuple[SweepConfig, tuple[str, ...], float]) -> list[dict[str, object]]:
    """One zone set at one changeover delay: the optimum and every policy on every start."""
    config, zones, changeover = task
    traces = load_trace_set(config.traces_dir)
    label = zone_set_label(traces, zones)
    sizes = lengths(traces, config.job_hours, config.job_fractions, changeover)
    prepared = prepare(traces, list(zones), label, sizes.unit_seconds)
    horizon = math.ceil(max(sizes.deadline_seconds) / sizes.unit_seconds) + 1
    starts = start_rows(prepared.times, horizon, config.starts, config.seed, label)
    migration = config.checkpoint_gb * config.egress_per_gb
    optimum = cached_optimum(prepared, starts, sizes, migration)
    hindsight = None
    if config.hindsight_zone and len(zones) > 1:
        hindsight = hindsight_zone_costs(prepared.market, starts, sizes)
    rows = simulate_all(config, prepared, label, sizes, starts, optimum, migration, changeover)
    if hindsight is not None:
        add_hindsight_zone(rows, starts, config.job_fractions, optimum, hindsight)
    return rows


def cached_optimum(
    prepared: PreparedZones, starts: list[int], sizes: Lengths, migration: float
) -> np.ndarray:
    """The DP's answer, kept on disk by its inputs (it does not depend on any policy)."""
    return cached_market_optimum(prepared.market, starts, sizes, migration)


def gap_to(cost: float, best: float) -> float:
    """cost / the optimum - 1 (NaN where the optimum is infeasible or free), as reported."""
    return round(cost / best - 1.0, 5) if math.isfinite(best) and best > 0 else float("nan")


def single_zone_market(market: LatticeMarket, zone: int) -> LatticeMarket:
    """Zone `zone` alone, with on demand in its own region only: no other zone, no egress."""
    return replace(
        market,
        available=market.available[zone : zone + 1],
        spot_price=market.spot_price[zone : zone + 1],
        zone_region=(0,),
        on_demand_price=(market.on_demand_price[market.zone_region[zone]],),
    )


def hindsight_zone_costs(market: LatticeMarket, starts: list[int], sizes: Lengths) -> np.ndarray:
    """Per start and deadline, the cheapest of the zones' own optima: an oracle that knows
    the whole future but must stay in one zone (and its region's on demand)."""
    per_zone = [
        cached_market_optimum(single_zone_market(market, z), starts, sizes, 0.0)
        for z in range(market.available.shape[0])
    ]
    best: np.ndarray = np.minimum.reduce(per_zone)
    return best


def add_hindsight_zone(
    rows: list[dict[str, object]],
    starts: list[int],
    fractions: Sequence[float],
    optimum: np.ndarray,
    hindsight: np.ndarray,
) -> None:
    """Adds the best single zone's cost and gap to each row of its start and fraction, the
    gap computed exactly as a policy's (against the unrounded optimum) so they compare."""
    start_index = {start: si for si, start in enumerate(starts)}
    fraction_index = {fraction: fi for fi, fraction in enumerate(fractions)}
    for row in rows:
        at = (start_index[int(str(row["start"]))], fraction_index[float(str(row["job_fraction"]))])
        cost, best = float(hindsight[at]), float(optimum[at])
        row["hindsight_zone_cost"] = round(cost, 4)
        row["hindsight_zone_gap"] = gap_to(cost, best)


def cached_market_optimum(
    market: LatticeMarket, starts: list[int], sizes: Lengths, migration: float
) -> np.ndarray:
    """`optimal_costs` on `market`, kept on disk by every input that changes its answer."""
    key = hashlib.sha256()
    for part in (market.available, market.spot_price, market.times, np.asarray(starts)):
        key.update(np.ascontiguousarray(part).tobytes())
    key.update(repr((market.zone_region, market.on_demand_price, sizes, migration)).encode())
    path = CACHE_DIR / f"optimum-{key.hexdigest()[:24]}.npy"
    if path.is_file():
        cached: np.ndarray = np.load(path)
        return cached
    optimum = optimal_costs(
        market, starts, sizes.job, sizes.changeover, sizes.deadline_seconds, migration
    )
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.save(path, optimum)
    return optimum


def simulate_all(
    config: SweepConfig,
    prepared: PreparedZones,
    label: str,
    sizes: Lengths,
    starts: list[int],
    optimum: np.ndarray,
    migration: float,
    changeover: float,
) -> list[dict[str, object]]:
    unit_h = prepared.unit_hours
    on_demand_price = min(prepared.market.on_demand_price)
    on_demand_cost = (sizes.job + sizes.changeover) * unit_h * on_demand_price
    rows: list[dict[str, object]] = []
    by_policy: dict[str, list[dict[str, object]]] = {}
    for name in config.policies:
        same_as = SINGLE_ZONE_TWINS.get(name)
        if len(prepared.names) == 1 and same_as in by_policy:
            # On one zone the multi-zone variant is the same algorithm: same rows.
            rows += [{**row, "policy": name} for row in by_policy[same_as]]
            continue
        start_of_policy = len(rows)
        policy = POLICIES[name]
        for fi, fraction in enumerate(config.job_fractions):
            for si, start in enumerate(starts):
                job = Job(start, sizes.job, sizes.deadline_seconds[fi], sizes.changeover, migration)
                result = simulate(policy, prepared, job)
                best = float(optimum[si, fi])
                row: dict[str, object] = {
                    "policy": name,
                    "traces": label,
                    "start": start,
                    "job_fraction": fraction,
                    "changeover_hours": changeover,
                    "job_hours": round(sizes.job * unit_h, 4),
                    "deadline_hours": round(sizes.deadline_seconds[fi] / 3600, 4),
                    "cost": round(result.cost, 4),
                    "on_demand_cost": round(on_demand_cost, 4),
                    "optimal_cost": round(best, 4),
                    "missed_deadline": int(result.missed_deadline),
                    "normalized_cost": round(result.cost / on_demand_cost, 5),
                    "gap_to_optimum": gap_to(result.cost, best),
                }
                details = asdict(result)
                for key in (
                    "spot_hours",
                    "on_demand_hours",
                    "idle_hours",
                    "changeovers",
                    "preemptions",
                    "migrations",
                    "migration_cost",
                    "finish_hours",
                    "policy_calls",
                ):
                    value = details[key]
                    row[key] = round(value, 4) if isinstance(value, float) else value
                rows.append(row)
        by_policy[name] = rows[start_of_policy:]
    return rows


def run_sweep(config: SweepConfig) -> list[dict[str, object]]:
    tasks = [(config, zones, d) for zones in config.zone_sets for d in config.changeover_hours]
    chunks: list[list[dict[str, object]]] = []

    def progress() -> None:
        print(f"  {len(chunks)}/{len(tasks)} zone sets x changeovers done", file=sys.stderr)

    if config.workers <= 1 or len(tasks) == 1:
        for task in tasks:
            chunks.append(run_task(task))
            progress()
    else:
        # fork would copy the parent's state; spawn keeps each worker clean and equal.
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(config.workers, len(tasks))) as pool:
            for chunk in pool.imap(run_task, tasks, chunksize=1):
                chunks.append(chunk)
                progress()
    return [row for chunk in chunks for row in chunk]
