"""skyd's policy reads the lengths of past spot runs and outages: unit and behaviour tests."""

from __future__ import annotations

import numpy as np
import pytest

from bench.spot.engine import Job, simulate
from skyd.policy import IDLE, POLICIES, PolicyState, SlackReserve, Target, ZoneMarket
from skyd.policy.availability import run_lengths, run_outlook
from tests.policy.test_policy_simulation import UNIT, make_zones

D = 0.2
STEP = 0.05  # history samples: 3 minutes
POLICY = SlackReserve()
ON_DEMAND = Target.on_demand("ra")


def pattern(up: int, down: int, repeat: int) -> np.ndarray:
    return np.array(([1] * up + [0] * down) * repeat, dtype=bool)


def state(
    past: np.ndarray,
    *,
    slack: float,
    current: Target = IDLE,
    zones: tuple[ZoneMarket, ...] | None = None,
) -> PolicyState:
    job, remaining, deadline = 20.0, 10.0, 40.0
    zones = zones or (ZoneMarket("za", "ra", bool(past[-1]), 1.0, past, STEP),)
    return PolicyState(
        job_hours=job,
        done_hours=job - remaining,
        deadline_hours=deadline,
        elapsed_hours=deadline - remaining - slack,
        changeover_hours=D,
        current=current,
        zones=zones,
        on_demand_prices={z.region: 3.0 for z in zones},
        step_hours=STEP,
    )


def test_run_lengths_and_outlook() -> None:
    history = np.array([1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 1], dtype=bool)
    assert run_lengths(history, 0.5, up=True).tolist() == [0.5, 1.0, 2.0]
    assert run_lengths(history, 0.5, up=False).tolist() == [0.5, 1.5]
    runs = np.array([0.5, 1.0, 2.0])
    fresh = run_outlook(runs, 0.0, window=0.6)
    assert fresh.residual_hours == pytest.approx(3.5 / 3)
    assert fresh.end_within == pytest.approx(1 / 3) and fresh.longer == 3
    assert fresh.next_change_hours == pytest.approx(0.4)  # 1.0 h enters the window at 0.4 h
    old = run_outlook(runs, 1.2, window=0.6)
    assert old.residual_hours == pytest.approx(0.8) and old.end_within == 0.0
    assert old.next_change_hours == pytest.approx(0.2)  # 2.0 h enters the window
    # No run this long seen: the prior, and nothing changes with age.
    none = run_outlook(runs, 3.0, prior_residual=2.0, prior_runs=5.0)
    assert none.residual_hours == 2.0 and none.next_change_hours is None
    # The prior weighs in while runs are few.
    blended = run_outlook(runs, 0.0, prior_residual=2.0, prior_runs=3.0)
    assert blended.residual_hours == pytest.approx((3.5 / 3 + 2.0) / 2)


def test_on_demand_is_kept_when_spot_runs_end_before_the_changeover_pays_back() -> None:
    # Spot runs here last 0.1 h, less than the 0.2 h changeover: one has just come back.
    short = np.concatenate([pattern(2, 40, 100), pattern(1, 0, 1)])
    kept = POLICY.decide(state(short, slack=15.0, current=ON_DEMAND))
    assert kept.target == ON_DEMAND
    assert kept.reason == "spot run not expected to pay back its changeovers"
    # Past 0.1 h no run has lasted: the age crosses them all, then the prior speaks.
    assert kept.recheck_after_hours == pytest.approx(0.05)
    # Runs of 3 h: leaving on demand pays back, at once (slack is ample).
    long = np.concatenate([pattern(60, 40, 30), pattern(1, 0, 1)])
    assert POLICY.decide(state(long, slack=15.0, current=ON_DEMAND)).target == Target.spot(
        "za", "ra"
    )
    # Nor is it entered from idle: the launch would be paid for nothing. It waits,
    # and looks again when the run is older than any seen (0.05 h from now).
    idle = POLICY.decide(state(short, slack=15.0))
    assert idle.target == IDLE and idle.recheck_after_hours == pytest.approx(0.05)


def test_a_short_outage_is_waited_out_rather_than_bridged() -> None:
    # Outages here last 0.1 h (under one changeover); one began 0.05 h ago, below
    # the reserve, where an outage is otherwise bridged at once.
    policy = POLICY
    flicker = np.concatenate([pattern(40, 2, 60), pattern(40, 1, 1)])
    waited = policy.decide(state(flicker, slack=1.5))
    assert waited.target == IDLE and waited.reason == "outage likely short: wait"
    assert waited.recheck_after_hours is not None and 0 < waited.recheck_after_hours <= 0.55
    # Outages of 2 h: bridged on demand at once.
    long = np.concatenate([pattern(40, 40, 60), pattern(40, 1, 1)])
    assert policy.decide(state(long, slack=1.5)).target == ON_DEMAND
    # Never into the safety net: with slack for no wait, it bridges.
    assert policy.decide(state(flicker, slack=0.4)).target == ON_DEMAND
    # Off (short_outage above 1: no share of outages reaches it), the flicker is bridged.
    assert SlackReserve(short_outage=1.1).decide(state(flicker, slack=1.5)).target == ON_DEMAND


def test_scarce_slack_picks_the_zone_whose_runs_last() -> None:
    # za is cheaper but its runs last 0.3 h; zb's last 6 h. Both just came back.
    short = np.concatenate([pattern(6, 20, 100), pattern(1, 0, 1)])
    lasting = np.concatenate([pattern(120, 20, 20), pattern(1, 0, 1)])
    za = ZoneMarket("za", "ra", True, 0.8, short, STEP)
    zb = ZoneMarket("zb", "ra", True, 1.0, lasting, STEP)
    assert POLICY.decide(state(short, slack=1.0, zones=(za, zb))).target == Target.spot("zb", "ra")


def test_spot_runs_shorter_than_the_changeover_are_not_launched_into() -> None:
    # 6-minute probes; spot up one probe (shorter than d = 12 min), then gone 2 h;
    # the job starts with 100 h of this history behind it.
    rows = 2500
    available = np.resize(np.array([True] + [False] * 20), rows)[None, :]
    prepared = make_zones(available)
    for fraction in (0.6, 0.8, 0.95):
        job = Job(1000, 600, 600 / fraction * UNIT, 12)
        skyd = simulate(POLICIES["skyd"], prepared, job)
        assert not skyd.missed_deadline
        assert skyd.cost == pytest.approx(simulate(POLICIES["skyd"], prepared, job, True).cost)
        # It never launches spot whose runs end before d is over: one on-demand launch.
        assert skyd.spot_hours == 0 and skyd.changeovers == 1
        assert skyd.cost <= simulate(POLICIES["up"], prepared, job).cost + 1e-9
