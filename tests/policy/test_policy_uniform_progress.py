"""Uniform Progress as its authors' artifact states it: each rule fires exactly when it should."""

from __future__ import annotations

from typing import TypedDict

from skyd.policy import IDLE, POLICIES, PolicyState, Target, UniformProgress, ZoneMarket

D = 0.2
UP = UniformProgress()
ON_DEMAND = Target.on_demand("ra")
SPOT = Target.spot("za", "ra")


class Limits(TypedDict):
    """A job's length and deadline, passed to state() as keywords."""

    job: float
    deadline: float


def state(
    *,
    done: float,
    elapsed: float,
    current: Target = IDLE,
    spot: bool = False,
    job: float = 10.0,
    deadline: float = 20.0,
    step: float = 0.0,
    overhead: float = 0.0,
) -> PolicyState:
    return PolicyState(
        job_hours=job,
        done_hours=done,
        deadline_hours=deadline,
        elapsed_hours=elapsed,
        changeover_hours=D,
        current=current,
        zones=(ZoneMarket("za", "ra", spot, 1.0),),
        on_demand_prices={"ra": 3.0},
        step_hours=step,
        overhead_left_hours=overhead,
    )


def test_registry_names() -> None:
    assert set(POLICIES) == {"on_demand", "greedy", "up", "up_multi", "skyd"}
    assert all(p.safe for p in POLICIES.values())


def test_idle_ahead_of_expected_progress_waits() -> None:
    # ep(4) = 4 * 10 / 20 = 2.0 <= cp = 2.5: idle until t = cp * R / C = 5.0.
    decision = UP.decide(state(done=2.5, elapsed=4.0))
    assert decision.target == IDLE
    assert decision.recheck_after_hours == 1.0


def test_idle_behind_expected_progress_goes_on_demand() -> None:
    assert UP.decide(state(done=1.9, elapsed=4.0)).target == ON_DEMAND


def test_spot_is_taken_even_when_behind_and_kept_until_preempted() -> None:
    assert UP.decide(state(done=0.5, elapsed=4.0, spot=True)).target == SPOT
    assert UP.decide(state(done=0.5, elapsed=6.0, current=SPOT, spot=True)).target == SPOT


def test_on_demand_is_kept_while_spot_is_unavailable_even_far_ahead() -> None:
    # The authors' rule: no spot, on demand stays, however far ahead of ep(t) it is.
    kept = UP.decide(state(done=6.0, elapsed=4.0, current=ON_DEMAND))
    assert kept.target == ON_DEMAND and kept.reason == "keep on-demand"
    # Only spot coming back (an availability change) can end it: no timed recheck.
    assert kept.recheck_after_hours is None


def test_switches_back_to_spot_only_once_progress_reaches_ep_t_plus_2d() -> None:
    # ep(t + 2d) = (4 + 0.4) * 0.5 = 2.2
    held = UP.decide(state(done=2.19, elapsed=4.0, current=ON_DEMAND, spot=True))
    assert held.target == ON_DEMAND
    # On demand cp grows at 1/h, ep at 0.5/h: the gap of 0.01 closes in 0.02 h.
    assert held.recheck_after_hours is not None
    assert abs(held.recheck_after_hours - 0.02) < 1e-9
    assert UP.decide(state(done=2.2, elapsed=4.0, current=ON_DEMAND, spot=True)).target == SPOT


def test_safety_net_fires_when_c_plus_2d_reaches_the_time_left() -> None:
    # C = 10, R = 11; at t = 9.2 with cp = 8.7 it is ahead of ep(t) = 8.36, and the time
    # left (1.8) still exceeds the remaining work plus 2d (1.3 + 0.4): it waits.
    tight: Limits = {"job": 10.0, "deadline": 11.0}
    assert UP.decide(state(done=8.7, elapsed=9.2, **tight)).target == IDLE
    fired = UP.decide(state(done=8.7, elapsed=9.3, **tight))
    assert fired.target == ON_DEMAND and fired.reason == "safety net"
    # Idle under the net it goes on demand even if spot is there (the artifact's rule)...
    assert UP.decide(state(done=8.7, elapsed=9.3, spot=True, **tight)).target == ON_DEMAND
    # ...and on demand under the net never leaves, even for spot, even if ahead.
    stay = UP.decide(state(done=8.7, elapsed=9.3, current=ON_DEMAND, spot=True, **tight))
    assert stay.target == ON_DEMAND


def test_last_changeover_keeps_spot_past_its_changeover_only() -> None:
    # remaining 2.0, time left 2.15 <= C + d: spot past its changeover is kept...
    assert UP.decide(state(done=8.0, elapsed=17.85, current=SPOT, spot=True)).target == SPOT
    # ...a spot instance still changing over is replaced by on demand.
    changing = state(done=8.0, elapsed=17.85, current=SPOT, spot=True, overhead=0.1)
    assert UP.decide(changing).target == ON_DEMAND


def test_thresholds_are_rounded_to_the_decision_step() -> None:
    # Decisions every 0.25 h: floor(1.8 / 0.25) * 0.25 = 1.75 <= ceil(1.7 / 0.25) * 0.25.
    tight: Limits = {"job": 10.0, "deadline": 11.0}
    fired = UP.decide(state(done=8.7, elapsed=9.2, step=0.25, **tight))
    assert fired.target == ON_DEMAND and fired.reason == "safety net"
    assert UP.decide(state(done=8.7, elapsed=9.2, **tight)).target == IDLE


def test_finished_job_goes_idle() -> None:
    assert UP.decide(state(done=10.0, elapsed=12.0, current=ON_DEMAND)).target == IDLE


def test_multi_zone_takes_spot_in_the_first_zone_that_has_it() -> None:
    multi = POLICIES["up_multi"]
    zones = (
        ZoneMarket("za", "ra", False, 1.0),
        ZoneMarket("zb", "rb", True, 1.1),
        ZoneMarket("zc", "rc", True, 0.9),
    )
    s = PolicyState(
        job_hours=10.0,
        done_hours=2.5,
        deadline_hours=20.0,
        elapsed_hours=4.0,
        changeover_hours=D,
        current=IDLE,
        zones=zones,
        on_demand_prices={"ra": 3.0, "rb": 3.0, "rc": 3.0},
        checkpoint_region="ra",
    )
    assert multi.decide(s).target == Target.spot("zb", "rb")
    # The single-zone variant only knows its first zone.
    assert UP.decide(s).target == IDLE
