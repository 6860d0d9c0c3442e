"""Policies replayed by the bench simulator: safe on adversarial traces, event jumps exact."""

from __future__ import annotations

import numpy as np
import pytest

from bench.spot.engine import Job, PreparedZones, prepare, simulate
from skyd.market.traces import TraceSet, ZoneTrace
from skyd.policy import POLICIES
from skyd.policy.optimum import optimal_costs

TICK = 0.1  # hours


def make_zones(available: np.ndarray, regions: list[str] | None = None) -> PreparedZones:
    n_zones, rows = available.shape
    regions = regions or [f"r{i}" for i in range(n_zones)]
    rng = np.random.default_rng(rows)
    zones = {
        f"z{i}": ZoneTrace(
            f"z{i}",
            regions[i],
            available[i].astype(bool),
            np.round(rng.uniform(0.8, 1.2, rows), 3),
            3.0,
        )
        for i in range(n_zones)
    }
    stamps = np.arange(rows, dtype=np.float64) * TICK * 3600
    traces = TraceSet("t", "aws", "x", "V100:1", stamps, zones)
    return prepare(traces, list(zones), "t")


def flapping(rng: np.random.Generator, zones: int, rows: int, mean_run: float) -> np.ndarray:
    """Availability with geometric up/down runs: many short windows, a hard case."""
    out = np.zeros((zones, rows), dtype=bool)
    for z in range(zones):
        t, up = 0, bool(rng.integers(2))
        while t < rows:
            run = int(rng.geometric(1.0 / mean_run))
            out[z, t : t + run] = up
            up, t = not up, t + run
    return out


def adversarial(zones: int, rows: int, k: int) -> np.ndarray:
    """Spot that lasts exactly one changeover plus one tick, then vanishes for a while."""
    pattern = np.array([True] * (k + 1) + [False] * (2 * k + 1))
    row = np.resize(pattern, rows)
    return np.stack([np.roll(row, z) for z in range(zones)])


CASES = [(seed, zones) for seed in range(8) for zones in (1, 3)]


@pytest.mark.parametrize(("seed", "zones"), CASES)
def test_no_safe_policy_misses_a_deadline(seed: int, zones: int) -> None:
    rng = np.random.default_rng(seed)
    rows = 700
    k = 1 + seed % 4
    available = adversarial(zones, rows, k) if seed % 2 else flapping(rng, zones, rows, 2 + seed)
    prepared = make_zones(available)
    work = 120
    for fraction in (0.6, 0.8, 0.9, 0.95, 0.99):
        deadline = max(int(work / fraction), work + k)  # on-demand from the start fits
        for start in rng.integers(0, rows - deadline, size=4):
            job = Job(int(start), work, deadline, k, migration_cost=1.0)
            for name, policy in POLICIES.items():
                result = simulate(policy, prepared, job)
                assert not result.missed_deadline, (name, fraction, int(start))
                assert result.finish_hours <= deadline * TICK + 1e-9


@pytest.mark.parametrize(("seed", "zones"), CASES[:8])
def test_event_jumps_change_nothing(seed: int, zones: int) -> None:
    rng = np.random.default_rng(50 + seed)
    prepared = make_zones(flapping(rng, zones, 500, 3 + seed))
    for fraction in (0.6, 0.85, 0.95):
        job = Job(int(rng.integers(0, 300)), 80, int(80 / fraction), 2, migration_cost=1.0)
        for name, policy in POLICIES.items():
            jumped = simulate(policy, prepared, job)
            ticked = simulate(policy, prepared, job, every_tick=True)
            assert jumped.cost == pytest.approx(ticked.cost), name
            assert jumped.finish_hours == pytest.approx(ticked.finish_hours), name
            assert jumped.changeovers == ticked.changeovers, name
            assert jumped.policy_calls <= ticked.policy_calls


@pytest.mark.parametrize("zones", [1, 2])
def test_policies_never_beat_the_optimum(zones: int) -> None:
    rng = np.random.default_rng(7)
    prepared = make_zones(flapping(rng, zones, 400, 6), regions=["ra", "rb"][:zones])
    starts = [0, 37, 90, 150]
    work, k = 60, 2
    deadlines = [int(work / f) for f in (0.6, 0.8, 0.95)]
    best = optimal_costs(
        prepared.market,
        starts,
        work,
        deadlines,
        k,
        migration_cost=1.0,
        run_lengths=prepared.run_lengths,
    )
    for si, start in enumerate(starts):
        for di, deadline in enumerate(deadlines):
            job = Job(start, work, deadline, k, migration_cost=1.0)
            for name, policy in POLICIES.items():
                cost = simulate(policy, prepared, job).cost
                assert cost >= best[si, di] - 1e-9, name
            on_demand = simulate(POLICIES["on_demand"], prepared, job)
            assert on_demand.cost == pytest.approx((work + k) * TICK * 3.0)


def test_spot_only_trace_runs_on_spot_with_one_changeover() -> None:
    prepared = make_zones(np.ones((1, 200), dtype=bool))
    for name in ("greedy", "uniform_progress", "skyd"):
        result = simulate(POLICIES[name], prepared, Job(10, 50, 80, 3))
        assert result.changeovers == 1
        assert result.on_demand_hours == 0
        assert result.spot_hours == pytest.approx(53 * TICK)


def test_no_spot_ever_uses_on_demand_just_in_time() -> None:
    prepared = make_zones(np.zeros((1, 200), dtype=bool))
    greedy = simulate(POLICIES["greedy"], prepared, Job(0, 50, 80, 3))
    assert not greedy.missed_deadline
    # Greedy waits until one changeover of slack is left (plus one tick of margin).
    assert greedy.idle_hours == pytest.approx((80 - 50 - 3 - 1 + 1) * TICK)
    assert greedy.finish_hours <= 80 * TICK


def test_prefix_sum_statistics_equal_the_history_computation() -> None:
    from dataclasses import replace

    from bench.spot.engine import zone_market

    rng = np.random.default_rng(3)
    prepared = make_zones(flapping(rng, 2, 600, 5))
    for _ in range(200):
        first = int(rng.integers(0, 500))
        row = int(rng.integers(first, 600))
        index = int(rng.integers(0, 2))
        fast = zone_market(prepared, index, "r", row, first)
        slow = replace(fast, settled=None, current_run=None)
        expected = slow.settled_stats()
        got = fast.settled_stats()
        assert got.fraction == pytest.approx(expected.fraction)
        assert got.mean_up_hours == pytest.approx(expected.mean_up_hours)
        assert got.mean_down_hours == pytest.approx(expected.mean_down_hours)
        assert got.observed_hours == pytest.approx(expected.observed_hours)
        assert fast.run_hours() == pytest.approx(slow.run_hours())


def test_multi_zone_uniform_progress_on_one_zone_is_uniform_progress() -> None:
    # bench.spot relies on this to reuse uniform_progress rows on single-zone runs.
    rng = np.random.default_rng(11)
    prepared = make_zones(flapping(rng, 1, 500, 4))
    for start in (0, 100, 250):
        job = Job(start, 90, 110, 2)
        single = simulate(POLICIES["uniform_progress"], prepared, job)
        multi = simulate(POLICIES["uniform_progress_multi"], prepared, job)
        assert single == multi
