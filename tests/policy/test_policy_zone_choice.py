"""Several zones: which zone the policy ranks first, by how its runs' lengths are spread."""

from __future__ import annotations

import numpy as np

from skyd.policy import SlackReserve, ZoneMarket
from skyd.policy.state import IDLE, PolicyState

STEP = 0.05  # 3-minute samples
D = 0.2


def runs(up_hours: list[float], down_hours: float = 0.5) -> np.ndarray:
    """A history of up runs of the given lengths, each followed by an outage."""
    out: list[bool] = []
    for up in up_hours:
        out += [True] * round(up / STEP) + [False] * round(down_hours / STEP)
    return np.array(out, dtype=bool)


def zone(name: str, past: np.ndarray, age_hours: float) -> ZoneMarket:
    history = np.concatenate([past, np.ones(round(age_hours / STEP), dtype=bool)])
    return ZoneMarket(name, "ra", True, 1.0, history, STEP)


def scarce_state(*zones: ZoneMarket) -> PolicyState:
    """40 h of work left, 1 h of slack: well below the reserve."""
    return PolicyState(
        job_hours=48.0,
        done_hours=8.0,
        deadline_hours=50.0,
        elapsed_hours=9.0,
        changeover_hours=D,
        current=IDLE,
        zones=zones,
        on_demand_prices={"ra": 3.0},
        step_hours=STEP,
    )


EVEN = runs([2.0] * 40)  # every run 2 h: memoryless-like spread or less (CV 0)
SPREAD = runs([0.2, 0.3, 0.2, 8.0, 0.2, 0.5, 12.0, 0.2, 0.3, 2.0] * 4)  # CV ≈ 2


def test_a_spread_of_run_lengths_wider_than_memoryless_is_heavy_tailed() -> None:
    model = SlackReserve().runs
    assert not model.heavy_tailed(zone("even", EVEN, 1.0))
    assert model.heavy_tailed(zone("spread", SPREAD, 1.0))
    # Too few runs to tell: assumed heavy-tailed, as before the test existed.
    assert model.heavy_tailed(zone("new", runs([2.0, 2.0]), 1.0))


def test_an_old_run_is_trusted_to_last_only_where_runs_are_heavy_tailed() -> None:
    policy = SlackReserve()
    # Runs of this zone all end at 2 h: one 1.8 h old has 0.2 h left, whatever its age.
    old_even = zone("old-even", EVEN, 1.8)
    # A zone whose runs all last 4 h, its run just begun.
    fresh = zone("fresh", runs([4.0] * 40), 0.1)
    picked = policy.zones.pick(scarce_state(old_even, fresh), [old_even, fresh], scarce=True)
    assert picked.zone == "fresh"
    # The same age where runs are heavy-tailed: at least `age_trust` times its age is
    # expected (9 h), and it is ranked first.
    old_spread = zone("old-spread", SPREAD, 1.8)
    state = scarce_state(old_spread, fresh)
    assert policy.zones.pick(state, [old_spread, fresh], scarce=True).zone == "old-spread"
