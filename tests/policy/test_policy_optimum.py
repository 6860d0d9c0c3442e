"""The DP optimum against brute force over every schedule on tiny traces."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from skyd.policy.optimum import TickMarket, available_run_lengths, optimal_costs

# An action per tick: None = idle, ("s", zone) = spot, ("o", region) = on demand.
Action = tuple[str, int] | None


def brute_force(
    market: TickMarket, start: int, work: int, deadline: int, k: int, migration: float
) -> float:
    """Cheapest cost over all action sequences, replayed tick by tick (the stated model)."""
    zones = market.available.shape[0]
    regions = len(market.on_demand_price)
    actions: list[Action] = [None]
    actions += [("s", z) for z in range(zones)]
    actions += [("o", r) for r in range(regions)]
    best = float("inf")
    for plan in itertools.product(actions, repeat=deadline):
        cost, progress, current, overhead, home = 0.0, 0, None, 0, None
        for t, action in enumerate(plan):
            row = start + t
            if current is not None and current[0] == "s" and not market.available[current[1], row]:
                current = None
            if action != current:
                if action is not None:
                    if action[0] == "s" and not market.available[action[1], row]:
                        break  # launching into no capacity: not a schedule
                    region = market.zone_region[action[1]] if action[0] == "s" else action[1]
                    if progress > 0 and home is not None and home != region:
                        cost += migration
                    home = region
                    overhead = k
                current = action
            if current is not None:
                if current[0] == "s":
                    cost += market.spot_price[current[1], row] * market.tick_hours
                else:
                    cost += market.on_demand_price[current[1]] * market.tick_hours
                if overhead > 0:
                    overhead -= 1
                else:
                    progress += 1
                    if progress == work:
                        best = min(best, cost)
                        break
    return best


def random_market(rng: np.random.Generator, zones: int, regions: int, rows: int) -> TickMarket:
    return TickMarket(
        available=rng.random((zones, rows)) < 0.6,
        spot_price=np.round(rng.uniform(0.5, 1.5, size=(zones, rows)), 2),
        zone_region=tuple(int(z % regions) for z in range(zones)),
        on_demand_price=tuple(float(p) for p in rng.uniform(2.0, 3.0, size=regions)),
        tick_hours=0.5,
    )


@pytest.mark.parametrize("seed", range(6))
def test_single_zone_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    market = random_market(rng, zones=1, regions=1, rows=9)
    work, k = 2 + seed % 2, 1 + seed % 2
    deadlines = [work + k, work + k + 2, 7]
    got = optimal_costs(market, [0, 1, 2], work, deadlines, k)
    for si, start in enumerate([0, 1, 2]):
        for di, deadline in enumerate(deadlines):
            expected = brute_force(market, start, work, deadline, k, 0.0)
            assert got[si, di] == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(4))
def test_two_regions_with_egress_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    market = random_market(rng, zones=2, regions=2, rows=6)
    got = optimal_costs(market, [0], 2, [4, 6], 1, migration_cost=0.3)
    for di, deadline in enumerate([4, 6]):
        assert got[0, di] == pytest.approx(brute_force(market, 0, 2, deadline, 1, 0.3))


def test_infeasible_deadline_is_inf() -> None:
    market = random_market(np.random.default_rng(1), 1, 1, 8)
    got = optimal_costs(market, [0], 4, [4, 5], 1)
    assert np.isinf(got[0, 0])
    assert np.isfinite(got[0, 1])


def test_always_available_cheap_spot_costs_one_changeover() -> None:
    market = TickMarket(
        available=np.ones((1, 10), dtype=bool),
        spot_price=np.full((1, 10), 1.0),
        zone_region=(0,),
        on_demand_price=(3.0,),
        tick_hours=1.0,
    )
    assert optimal_costs(market, [0], 5, [8], 2)[0, 0] == pytest.approx(7.0)


def test_run_lengths() -> None:
    runs = available_run_lengths(np.array([True, True, False, True, True, True]))
    assert runs.tolist() == [2, 1, 0, 3, 2, 1]


def test_rejects_bad_arguments() -> None:
    market = random_market(np.random.default_rng(2), 1, 1, 5)
    with pytest.raises(ValueError, match="changeover_ticks must be >= 1"):
        optimal_costs(market, [0], 2, [4], 0)
    with pytest.raises(ValueError, match="past the end of the trace"):
        optimal_costs(market, [3], 2, [4], 1)
