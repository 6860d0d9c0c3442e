"""The wait between checkpoint pulls: Young's rule in money, within the configured bounds."""

from __future__ import annotations

import math

from skyd.runner.pull_cadence import PullPrice, pull_interval_s


def test_the_wait_balances_egress_against_the_work_a_preemption_loses() -> None:
    # $0.45 a pull (5 GB out of AWS), $1 an hour of instance, 0.2 preemptions an hour:
    # sqrt(2 * 0.45 / (0.2 * 1)) = 2.12 h, where pulls ($0.21/h) and lost work ($0.21/h)
    # cost the same
    price = PullPrice(pull_micros=450_000, hourly_micros=1_000_000, losses_per_hour=0.2)
    wait = pull_interval_s(price, floor_s=10.0, ceiling_s=86_400.0)
    assert math.isclose(wait, math.sqrt(4.5) * 3600.0)
    hours = wait / 3600.0
    pulls, lost = 0.45 / hours, 0.2 * 1.0 * hours / 2
    assert math.isclose(pulls, lost)
    # either side of it costs more an hour
    for other in (hours * 0.8, hours * 1.25):
        assert 0.45 / other + 0.2 * other / 2 > pulls + lost


def test_the_wait_stays_within_its_bounds() -> None:
    big = PullPrice(pull_micros=450_000, hourly_micros=1_000_000, losses_per_hour=0.2)
    assert pull_interval_s(big, floor_s=10.0, ceiling_s=1800.0) == 1800.0
    # a few KB on a dear, often-lost instance: back to the floor
    small = PullPrice(pull_micros=1, hourly_micros=30_000_000, losses_per_hour=2.0)
    assert pull_interval_s(small, floor_s=10.0, ceiling_s=1800.0) == 10.0


def test_free_pulls_keep_the_floor_and_instances_never_lost_wait_the_ceiling() -> None:
    assert pull_interval_s(None, floor_s=10.0, ceiling_s=1800.0) == 10.0
    free = PullPrice(pull_micros=0, hourly_micros=1_000_000, losses_per_hour=0.5)
    assert pull_interval_s(free, floor_s=10.0, ceiling_s=1800.0) == 10.0
    on_demand = PullPrice(pull_micros=450_000, hourly_micros=1_000_000, losses_per_hour=0.0)
    assert pull_interval_s(on_demand, floor_s=10.0, ceiling_s=1800.0) == 1800.0
