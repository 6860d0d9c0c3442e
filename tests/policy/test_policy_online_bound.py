"""bench.spot.online_bound: the best online policy's expected cost under a renewal model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.spot.online_bound import INFEASIBLE, RenewalModel, hazards, main, solve
from skyd.market import shipped_trace_dir

CAP = 3
SPOT, ON_DEMAND = 1.0, 3.0


def model(up_ends: float, down_ends: float) -> RenewalModel:
    return RenewalModel(0.5, np.full(CAP + 1, up_ends), np.full(CAP + 1, down_ends))


def up(age: int = 0) -> int:
    return age


def down(age: int = 0) -> int:
    return CAP + 1 + age


def test_hazards_by_age_and_pooled_tail() -> None:
    h = hazards(np.array([0.5, 0.5, 1.0, 3.0]), 0.5, cap=2)
    # Age 0: 2 of 4 runs end within the first tick; age 1: 1 of the 2 left.
    assert h[0] == pytest.approx(0.5) and h[1] == pytest.approx(0.5)
    # Past the cap: the one 6-tick run has 4 ticks of excess, an exponential tail.
    assert h[2] == pytest.approx(1 / 5)


def test_spot_that_never_ends_is_taken_at_once() -> None:
    costs = solve(model(0.0, 0.0), work_ticks=6, slack_ticks=4, changeover_ticks=2,
                           spot_price=SPOT, on_demand_price=ON_DEMAND).idle_costs  # fmt: skip
    # One launch: its changeover and the work, at the spot price.
    assert costs[up()] == pytest.approx(SPOT * 0.5 * (6 + 2))


def test_an_outage_that_never_ends_is_run_on_demand_or_infeasible() -> None:
    costs = solve(model(0.0, 0.0), 6, 4, 2, SPOT, ON_DEMAND).idle_costs
    assert costs[down()] == pytest.approx(ON_DEMAND * 0.5 * (6 + 2))
    # Less slack than one changeover: the deadline cannot be met.
    assert solve(model(0.0, 0.0), 6, 1, 2, SPOT, ON_DEMAND).idle_costs[down()] >= INFEASIBLE


def test_waits_out_an_outage_it_knows_ends_now_only_with_the_slack_for_it() -> None:
    ends_next_tick = RenewalModel(0.5, np.zeros(CAP + 1), np.ones(CAP + 1))
    # Idle one tick, then spot: the wait costs a tick of slack and no money.
    assert solve(ends_next_tick, 6, 3, 2, SPOT, ON_DEMAND).idle_costs[down()] == pytest.approx(
        SPOT * 0.5 * 8
    )
    # Slack for the changeover only: on demand, there is no tick to wait.
    assert solve(ends_next_tick, 6, 2, 2, SPOT, ON_DEMAND).idle_costs[down()] == pytest.approx(
        ON_DEMAND * 0.5 * 8
    )


def test_more_slack_never_costs_more_and_never_more_than_on_demand() -> None:
    flaky = RenewalModel(0.5, np.array([0.6, 0.3, 0.1, 0.05]), np.array([0.8, 0.5, 0.2, 0.1]))
    previous = None
    for slack in range(2, 12):
        costs = solve(flaky, 10, slack, 2, SPOT, ON_DEMAND).idle_costs
        assert np.all(costs <= ON_DEMAND * 0.5 * 12 + 1e-9)
        if previous is not None:
            assert np.all(costs <= previous + 1e-9)
        previous = costs


def test_cli_reports_the_bound_beside_up_and_skyd(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["--traces", str(shipped_trace_dir()), "--zone", "us-east-1c", "--job-hours", "3",
         "--job-fraction", "0.8", "--starts", "3", "--tick-hours", "0.1", "--json"]
    )  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    row = report["fractions"]["0.8"]
    assert report["zone"] == "us-east-1c"
    for key in ("optimum", "online_bound", "up", "skyd", "online_bound_over_up", "skyd_over_up"):
        assert np.isfinite(row[key])
    assert 0 < row["online_bound"] < INFEASIBLE


def test_cli_refuses_an_unknown_zone_and_a_tick_that_does_not_divide_d(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--traces", str(shipped_trace_dir()), "--zone", "nowhere-1z"]) == 2
    assert "--zone 'nowhere-1z'" in capsys.readouterr().err
    args = ["--traces", str(shipped_trace_dir()), "--zone", "us-east-1c", "--tick-hours", "0.07"]
    assert main(args) == 2
    assert "--tick-hours must divide --changeover-hours" in capsys.readouterr().err


def test_the_dp_replayed_is_a_safe_policy_that_matches_its_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        ["--traces", str(shipped_trace_dir()), "--zone", "us-west-2a", "--job-hours", "4",
         "--job-fraction", "0.8", "--starts", "4", "--tick-hours", "0.1",
         "--replay", "history", "--json"]
    )  # fmt: skip
    assert code == 0  # replay_costs raises on a missed deadline
    row = json.loads(capsys.readouterr().out)["fractions"]["0.8"]
    # No schedule beats the omniscient optimum, the DP's replay included.
    assert row["renewal_dp"] >= row["optimum"] - 1e-6
    assert row["renewal_dp_mean_gap"] >= -1e-9


def test_the_recorded_actions_follow_the_values() -> None:
    from bench.spot.online_bound import LAUNCH_SPOT

    never_ends = RenewalModel(0.5, np.zeros(CAP + 1), np.zeros(CAP + 1))
    solution = solve(never_ends, 6, 4, 2, SPOT, ON_DEMAND, record=True)
    assert solution.actions is not None
    # Idle with spot up and lasting: launch spot, at any work and slack left.
    assert np.all(solution.actions[1:, 2:, 0, up()] == LAUNCH_SPOT)


def test_cli_pools_several_zones_as_bench_spot_pools_a_sweep(
    capsys: pytest.CaptureFixture[str],
) -> None:
    zones = ["us-east-1c", "us-west-2a"]
    code = main(
        ["--traces", str(shipped_trace_dir()), "--zone", ",".join(zones), "--job-hours", "3",
         "--job-fraction", "0.8", "--starts", "3", "--tick-hours", "0.1", "--json"]
    )  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(report["zones"]) == zones
    rows = [report["zones"][z]["0.8"] for z in zones]
    together = report["pooled"]["0.8"]
    # bench.spot's measure: the mean over every run of every zone (each zone has 3).
    up_gap = (rows[0]["up_mean_gap"] + rows[1]["up_mean_gap"]) / 2
    assert together["up_mean_gap"] == pytest.approx(up_gap)
    for name in ("online_bound", "skyd"):
        gap = (rows[0][f"{name}_mean_gap"] + rows[1][f"{name}_mean_gap"]) / 2
        assert together[f"{name}_over_up"] == pytest.approx(gap / up_gap)
    assert together["skyd_mean_gap"] >= -1e-9  # no schedule beats the optimum
