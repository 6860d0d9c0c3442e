"""What a changeover of slack is worth below the reserve, and how the ranking uses it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skyd.policy import SlackReserve, ZoneMarket
from skyd.policy.slack_value import changeover_worth, on_demand_hours, spot_starts_left
from skyd.policy.state import IDLE, PolicyState

STEP = 0.05
D = 0.2


@pytest.mark.parametrize(
    ("starts", "work", "mean"), [(1, 10.0, 4.0), (5, 30.0, 5.0), (12, 48.0, 6.0)]
)
def test_on_demand_hours_is_the_expected_work_left_after_the_spot_runs(
    starts: int, work: float, mean: float
) -> None:
    rng = np.random.default_rng(7)
    total = rng.gamma(starts, mean, size=400_000)
    simulated = float(np.maximum(work - total, 0.0).mean())
    assert on_demand_hours(starts, work, mean) == pytest.approx(simulated, abs=0.03)


def test_no_start_left_leaves_all_the_work_to_on_demand() -> None:
    assert on_demand_hours(0, 12.0, 5.0) == 12.0
    assert on_demand_hours(3, 0.0, 5.0) == 0.0


def test_spot_starts_are_counted_down_to_the_safety_net() -> None:
    net = 2 * D
    assert spot_starts_left(net - 0.01, D, net) == 0
    assert spot_starts_left(net, D, net) == 1
    assert spot_starts_left(net + D, D, net) == 2
    assert spot_starts_left(2.53, D, net) == 11
    with pytest.raises(ValueError, match="changeover must be positive"):
        spot_starts_left(1.0, 0.0, 0.0)


def test_a_changeover_that_takes_no_time_is_worth_nothing() -> None:
    # It spends no slack, so no start is lost: not "no starts left" (a whole run).
    assert changeover_worth(0.0, 0.0, 0.0, 30.0, 5.0) == 0.0


def test_the_last_start_is_worth_a_whole_run_and_plenty_of_starts_nothing() -> None:
    net = 2 * D
    # After this start the slack is under the net: its end sends the rest on demand,
    # so it is worth what one more run would have done, E[min(run, work)].
    last = changeover_worth(net + D - 0.01, D, net, 30.0, 5.0)
    assert last == pytest.approx(5.0 * (1 - math.exp(-30.0 / 5.0)), rel=1e-6)
    # Thirty starts for 10 h of 5 h runs: one more saves nothing measurable.
    assert changeover_worth(net + 30 * D, D, net, 10.0, 5.0) < 1e-6
    # In between, it grows as the slack falls.
    worths = [changeover_worth(net + k * D, D, net, 40.0, 5.0) for k in (12, 9, 6, 3)]
    assert worths == sorted(worths)


def memoryless(mean: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """A history of `n` exponential up runs of mean `mean`, each followed by 0.5 h out."""
    out: list[bool] = []
    for up in rng.exponential(mean, size=n):
        out += [True] * max(1, round(up / STEP)) + [False] * 10
    return np.array(out, dtype=bool)


def zone(name: str, region: str, price: float, past: np.ndarray) -> ZoneMarket:
    # A run just begun (one step old): ranked at what the zone's runs go on to last.
    return ZoneMarket(name, region, True, price, np.concatenate([past, [True]]), STEP)


def state(slack: float, *zones: ZoneMarket) -> PolicyState:
    """Idle with 40 h of work left, the checkpoint in region `home`, $1 a move."""
    return PolicyState(
        job_hours=48.0,
        done_hours=8.0,
        deadline_hours=40.0 + 9.0 + slack,
        elapsed_hours=9.0,
        changeover_hours=D,
        current=IDLE,
        zones=zones,
        on_demand_prices={"home": 2.5, "away": 2.5},
        step_hours=STEP,
        checkpoint_region="home",
        migration_cost=1.0,
    )


@pytest.fixture
def alike() -> tuple[ZoneMarket, ZoneMarket]:
    """Two alike memoryless zones: home's runs ~5 h at $0.75, away's ~8 h at $0.90."""
    rng = np.random.default_rng(3)
    home = zone("home-a", "home", 0.75, memoryless(5.0, 60, rng))
    away = zone("away-a", "away", 0.90, memoryless(8.0, 60, rng))
    return home, away


def test_with_starts_to_spare_a_slightly_longer_run_is_not_chased_to_another_region(
    alike: tuple[ZoneMarket, ZoneMarket],
) -> None:
    home, away = alike
    policy = SlackReserve()
    # 2.5 h of slack, 11 starts for 40 h of ~5 h runs: below the reserve, but the end
    # of a run is worth little; the move's egress and dearer hours are not.
    now = state(2.5, home, away)
    assert now.slack_hours < policy.sizing.hours(now, policy.sizing.stats(now))
    assert policy.zones.pick(now, [home, away], policy.zones.end_worth(now)).zone == "home-a"


def test_at_the_last_starts_the_longer_run_is_worth_its_move(
    alike: tuple[ZoneMarket, ZoneMarket],
) -> None:
    home, away = alike
    policy = SlackReserve()
    # One start left after this one: a run's end sends most of the 40 h on demand.
    now = state(2 * D + 0.5, home, away)
    assert policy.zones.pick(now, [home, away], policy.zones.end_worth(now)).zone == "away-a"
