"""The DP optimum against brute force over every schedule on tiny traces, in exact time."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from skyd.policy.optimum import LatticeMarket, optimal_costs

# An action per row boundary: None = idle, ("s", zone) = spot, ("o", region) = on demand.
Action = tuple[str, int] | None


def brute_force(
    market: LatticeMarket, start: int, work: int, k: int, deadline_s: float, migration: float
) -> float:
    """Cheapest cost over all action sequences, replayed in exact time (the stated model)."""
    zones = market.available.shape[0]
    regions = len(market.on_demand_price)
    actions: list[Action] = [None]
    actions += [("s", z) for z in range(zones)]
    actions += [("o", r) for r in range(regions)]
    g = market.unit_seconds
    unit_h = market.unit_hours
    origin = int(market.times[start])
    deadline = deadline_s / g
    last = int(np.searchsorted(market.times, origin + deadline, side="left"))
    best = float("inf")
    for plan in itertools.product(actions, repeat=last - start):
        cost, done, current, overhead, home = 0.0, 0, None, 0, None
        for j, action in enumerate(plan):
            row = start + j
            t0 = int(market.times[row]) - origin
            t1 = int(market.times[row + 1]) - origin
            if current is not None and current[0] == "s" and not market.available[current[1], row]:
                current = None
            if action != current:
                if action is not None:
                    if action[0] == "s" and not market.available[action[1], row]:
                        break  # launching into no capacity: not a schedule
                    region = market.zone_region[action[1]] if action[0] == "s" else action[1]
                    if done > 0 and home is not None and home != region:
                        cost += migration
                    home = region
                    overhead = k
                current = action
            if current is None:
                continue
            price = (
                market.spot_price[current[1], row]
                if current[0] == "s"
                else market.on_demand_price[current[1]]
            )
            finish = t0 + overhead + work - done
            if finish <= t1:
                if finish <= deadline + 1e-9:
                    best = min(best, cost + price * (finish - t0) * unit_h)
                break
            cost += price * (t1 - t0) * unit_h
            done += max(0, t1 - t0 - overhead)
            overhead = max(0, overhead - (t1 - t0))
    return best


def random_market(
    rng: np.random.Generator, zones: int, regions: int, rows: int, unit: int = 60
) -> LatticeMarket:
    # Irregular rows of 2 to 4 units: the changeover and job length are not multiples.
    gaps = rng.integers(2, 5, size=rows)
    return LatticeMarket(
        available=rng.random((zones, rows)) < 0.6,
        spot_price=np.round(rng.uniform(0.5, 1.5, size=(zones, rows)), 2),
        times=np.concatenate([[0], np.cumsum(gaps)]).astype(np.int64),
        zone_region=tuple(int(z % regions) for z in range(zones)),
        on_demand_price=tuple(float(p) for p in rng.uniform(2.0, 3.0, size=regions)),
        unit_seconds=unit,
    )


@pytest.mark.parametrize("seed", range(8))
def test_single_zone_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    market = random_market(rng, zones=1, regions=1, rows=16)
    work, k = 5 + seed % 3, 1 + seed % 3
    # Deadlines between rows, in seconds, not on the lattice.
    deadlines = [(work + k + 0.5) * 60, (work + k + 7.3) * 60, 17.9 * 60]
    starts = [0, 1, 2]
    got = optimal_costs(market, starts, work, k, deadlines)
    for si, start in enumerate(starts):
        for di, deadline in enumerate(deadlines):
            expected = brute_force(market, start, work, k, deadline, 0.0)
            assert got[si, di] == pytest.approx(expected), (start, deadline)


@pytest.mark.parametrize("seed", range(4))
def test_two_regions_with_egress_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    market = random_market(rng, zones=2, regions=2, rows=10)
    deadlines = [10.5 * 60, 15 * 60]
    got = optimal_costs(market, [0], 4, 2, deadlines, migration_cost=0.3)
    for di, deadline in enumerate(deadlines):
        assert got[0, di] == pytest.approx(brute_force(market, 0, 4, 2, deadline, 0.3))


def test_infeasible_deadline_is_inf() -> None:
    market = random_market(np.random.default_rng(1), 1, 1, 12)
    # 4 units of work + 1 of changeover need 5 units: a 4.9-unit deadline cannot be met.
    got = optimal_costs(market, [0], 4, 1, [4.9 * 60, 5 * 60])
    assert np.isinf(got[0, 0])
    assert np.isfinite(got[0, 1])


def test_always_available_cheap_spot_costs_one_changeover_exactly() -> None:
    # 195 s rows, d = 0.2 h = 720 s, 1 h job: 4,320 s of spot at $1/h, not rounded to rows.
    market = LatticeMarket(
        available=np.ones((1, 40), dtype=bool),
        spot_price=np.full((1, 40), 1.0),
        times=np.arange(41, dtype=np.int64) * 13,
        zone_region=(0,),
        on_demand_price=(3.0,),
        unit_seconds=15,
    )
    got = optimal_costs(market, [0], 240, 48, [2 * 3600])
    assert got[0, 0] == pytest.approx(1.2)


def test_a_start_whose_deadline_ends_the_trace_goes_with_earlier_ones() -> None:
    # Short rows first, long rows last: the late start needs far fewer rows than the
    # early one, and its rows end with the trace.
    gaps = [1] * 12 + [4] * 4
    market = LatticeMarket(
        available=np.array([[True, False] * 6 + [True] * 4]),
        spot_price=np.full((1, 16), 1.0),
        times=np.concatenate([[0], np.cumsum(gaps)]).astype(np.int64),
        zone_region=(0,),
        on_demand_price=(3.0,),
        unit_seconds=60,
    )
    deadline = 9.5 * 60
    got = optimal_costs(market, [0, 13], 4, 2, [deadline])
    for si, start in enumerate([0, 13]):
        assert got[si, 0] == pytest.approx(brute_force(market, start, 4, 2, deadline, 0.0))


def test_rejects_bad_arguments() -> None:
    market = random_market(np.random.default_rng(2), 1, 1, 5)
    with pytest.raises(ValueError, match="changeover_units must be >= 1"):
        optimal_costs(market, [0], 2, 0, [600])
    with pytest.raises(ValueError, match="past the end of the trace"):
        optimal_costs(market, [3], 2, 1, [3600])
