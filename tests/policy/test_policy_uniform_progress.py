"""Uniform Progress on hand-made states: each of the paper's rules fires exactly when it should."""

from __future__ import annotations

from skyd.policy import IDLE, POLICIES, PolicyState, Target, UniformProgress, ZoneMarket

D = 0.2
UP = UniformProgress()


def state(
    *,
    done: float,
    elapsed: float,
    current: Target = IDLE,
    spot: bool = False,
    job: float = 10.0,
    deadline: float = 20.0,
    step: float = 0.0,
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
    )


ON_DEMAND = Target.on_demand("ra")
SPOT = Target.spot("za", "ra")


def test_registry_names() -> None:
    assert set(POLICIES) == {
        "on_demand",
        "greedy",
        "uniform_progress",
        "uniform_progress_multi",
        "skyd",
    }
    assert all(p.safe for p in POLICIES.values())


def test_idle_ahead_of_expected_progress_waits() -> None:
    # ep(4) = 4 * 10 / 20 = 2.0 <= cp = 2.5
    decision = UP.decide(state(done=2.5, elapsed=4.0))
    assert decision.target == IDLE
    # It falls behind at t = cp * R / C = 5.0, one hour later.
    assert decision.recheck_after_hours == 1.0


def test_idle_behind_expected_progress_goes_on_demand() -> None:
    assert UP.decide(state(done=1.9, elapsed=4.0)).target == ON_DEMAND


def test_spot_is_taken_even_when_behind() -> None:
    assert UP.decide(state(done=0.5, elapsed=4.0, spot=True)).target == SPOT


def test_stays_on_spot_until_preempted() -> None:
    # Far behind, but on spot: the exploitation rule keeps it.
    assert UP.decide(state(done=0.5, elapsed=6.0, current=SPOT, spot=True)).target == SPOT


def test_hysteresis_holds_until_progress_reaches_ep_t_plus_2d() -> None:
    # ep(t + 2d) = (4 + 0.4) * 0.5 = 2.2
    held = UP.decide(state(done=2.19, elapsed=4.0, current=ON_DEMAND, spot=True))
    assert held.target == ON_DEMAND
    # On demand cp grows at 1/h, ep at 0.5/h: the gap of 0.01 closes in 0.02 h.
    assert held.recheck_after_hours is not None
    assert abs(held.recheck_after_hours - 0.02) < 1e-9
    released = UP.decide(state(done=2.2, elapsed=4.0, current=ON_DEMAND, spot=True))
    assert released.target == SPOT
    # Released with no spot: it is ahead, so it goes idle.
    assert UP.decide(state(done=2.2, elapsed=4.0, current=ON_DEMAND)).target == IDLE


def test_safety_net_fires_exactly_below_c_plus_2d() -> None:
    # remaining work 2.0; time left 20 - 17.6 = 2.4 = C + 2d: not yet.
    just_ok = state(done=8.0 + 1e-6, elapsed=17.6)
    assert just_ok.slack_hours >= 2 * D
    assert UP.decide(just_ok).reason != "safety net"
    fired = UP.decide(state(done=8.0, elapsed=17.61))
    assert fired.target == ON_DEMAND and fired.reason == "safety net"
    # Once on on-demand under the net it never leaves, even for spot, even if ahead.
    stay = UP.decide(state(done=8.0, elapsed=17.61, current=ON_DEMAND, spot=True))
    assert stay.target == ON_DEMAND


def test_safety_net_is_widened_by_a_step_longer_than_d() -> None:
    # Decisions every 0.5 h (> d): the net is 2d + (0.5 - d) = 0.7 h of slack.
    # 0.2 h of work left (ahead of ep), so only the net can call for on-demand.
    fired = UP.decide(state(done=9.8, elapsed=19.15, step=0.5))
    assert fired.target == ON_DEMAND and fired.reason == "safety net"
    assert UP.decide(state(done=9.8, elapsed=19.05, step=0.5)).target == IDLE
    assert UP.decide(state(done=9.8, elapsed=19.15, step=0.1)).target == IDLE


def test_finished_job_goes_idle() -> None:
    assert UP.decide(state(done=10.0, elapsed=12.0, current=ON_DEMAND)).target == IDLE


def test_multi_zone_fails_over_to_the_next_zone_with_spot() -> None:
    multi = POLICIES["uniform_progress_multi"]
    zones = (
        ZoneMarket("za", "ra", False, 1.0),
        ZoneMarket("zb", "rb", True, 1.1),
        ZoneMarket("zc", "rc", True, 0.9),
    )
    base = state(done=2.5, elapsed=4.0)
    s = PolicyState(
        job_hours=base.job_hours,
        done_hours=base.done_hours,
        deadline_hours=base.deadline_hours,
        elapsed_hours=base.elapsed_hours,
        changeover_hours=D,
        current=IDLE,
        zones=zones,
        on_demand_prices={"ra": 3.0, "rb": 3.0, "rc": 3.0},
        last_zone="za",
        checkpoint_region="ra",
    )
    assert multi.decide(s).target == Target.spot("zb", "rb")
    # The single-zone variant only knows its first zone.
    assert UP.decide(s).target == IDLE
