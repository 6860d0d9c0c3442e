"""Policies replayed by the bench simulator: exact time, safe on adversarial traces, jumps exact."""

from __future__ import annotations

import numpy as np
import pytest

from bench.spot.engine import (
    Job,
    PreparedZones,
    lattice_seconds,
    prepare,
    simulate,
    snap_times,
    zone_market,
)
from bench.spot.sweep import Lengths, hindsight_zone_costs
from skyd.market.traces import TraceSet, ZoneTrace
from skyd.policy import POLICIES
from skyd.policy.optimum import optimal_costs

UNIT = 60  # seconds
TICK = 360  # seconds between probes (6 units), jittered when asked


def make_zones(
    available: np.ndarray,
    regions: list[str] | None = None,
    jitter: bool = False,
    tick: int = TICK,
    unit: int = UNIT,
    prices: np.ndarray | None = None,
) -> PreparedZones:
    n_zones, rows = available.shape
    regions = regions or [f"r{i}" for i in range(n_zones)]
    rng = np.random.default_rng(rows)
    zones = {
        f"z{i}": ZoneTrace(
            f"z{i}",
            regions[i],
            available[i].astype(bool),
            np.round(rng.uniform(0.8, 1.2, rows), 3) if prices is None else prices[i],
            3.0,
        )
        for i in range(n_zones)
    }
    gaps = np.full(rows, tick, dtype=np.float64)
    if jitter:  # probes 0-2 units late now and then: irregular spacing
        gaps += unit * rng.integers(0, 3, size=rows)
    stamps = 1.7e9 + np.concatenate([[0.0], np.cumsum(gaps[:-1])])
    traces = TraceSet("t", "aws", "x", "V100:1", stamps, zones)
    return prepare(traces, list(zones), "t", unit)


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
    """Spot that lasts about one changeover, then vanishes for a while."""
    pattern = np.array([True] * (k + 1) + [False] * (2 * k + 1))
    row = np.resize(pattern, rows)
    return np.stack([np.roll(row, z) for z in range(zones)])


CASES = [(seed, zones) for seed in range(8) for zones in (1, 3)]


@pytest.mark.parametrize(("seed", "zones"), CASES)
def test_no_safe_policy_misses_a_deadline(seed: int, zones: int) -> None:
    rng = np.random.default_rng(seed)
    rows = 700
    k = 3 + 4 * (seed % 4)  # changeover 3..15 units: not a multiple of a probe interval
    available = adversarial(zones, rows, 1 + seed % 3)
    if seed % 2 == 0:
        available = flapping(rng, zones, rows, 2 + seed)
    prepared = make_zones(available, jitter=seed % 3 == 0)
    work = 600  # 10 h
    for fraction in (0.6, 0.8, 0.9, 0.95, 0.99):
        deadline = max(work / fraction, work + k + 0.5) * UNIT  # on demand from the start fits
        for start in rng.integers(0, rows - 300, size=4):
            job = Job(int(start), work, deadline, k, migration_cost=1.0)
            for name, policy in POLICIES.items():
                result = simulate(policy, prepared, job)
                assert not result.missed_deadline, (name, fraction, int(start))
                assert result.finish_hours * 3600 <= deadline + 1e-6


@pytest.mark.parametrize(("seed", "zones"), CASES[:8])
def test_event_jumps_change_nothing(seed: int, zones: int) -> None:
    rng = np.random.default_rng(50 + seed)
    prepared = make_zones(flapping(rng, zones, 500, 3 + seed), jitter=True)
    for fraction in (0.6, 0.85, 0.95):
        work, k = 480, 11
        job = Job(int(rng.integers(0, 300)), work, work / fraction * UNIT, k, migration_cost=1.0)
        for name, policy in POLICIES.items():
            jumped = simulate(policy, prepared, job)
            asked = simulate(policy, prepared, job, every_row=True)
            assert jumped.cost == pytest.approx(asked.cost), name
            assert jumped.finish_hours == pytest.approx(asked.finish_hours), name
            assert jumped.changeovers == asked.changeovers, name
            assert jumped.policy_calls <= asked.policy_calls


@pytest.mark.parametrize("zones", [1, 2])
def test_policies_never_beat_the_optimum(zones: int) -> None:
    rng = np.random.default_rng(7)
    prepared = make_zones(flapping(rng, zones, 400, 6), regions=["ra", "rb"][:zones], jitter=True)
    starts = [0, 37, 90, 150]
    work, k = 360, 7
    deadlines = [work / f * UNIT for f in (0.6, 0.8, 0.95)]
    best = optimal_costs(prepared.market, starts, work, k, deadlines, migration_cost=1.0)
    for si, start in enumerate(starts):
        for di, deadline in enumerate(deadlines):
            job = Job(start, work, deadline, k, migration_cost=1.0)
            for name, policy in POLICIES.items():
                cost = simulate(policy, prepared, job).cost
                assert cost >= best[si, di] - 1e-9, name
            on_demand = simulate(POLICIES["on_demand"], prepared, job)
            assert on_demand.cost == pytest.approx((work + k) * UNIT / 3600 * 3.0)


def test_price_spikes_are_events_and_spot_above_on_demand_is_left() -> None:
    # Spot always up at $1/h, but $6/h (twice on demand) from 2 h to 4 h in.
    rows = 400
    prices = np.where((np.arange(rows) >= 20) & (np.arange(rows) < 40), 6.0, 1.0)[None, :]
    prepared = make_zones(np.ones((1, rows), dtype=bool), prices=prices)
    job = Job(0, 600, 900 * UNIT, 12)
    skyd = simulate(POLICIES["skyd"], prepared, job)
    asked = simulate(POLICIES["skyd"], prepared, job, every_row=True)
    assert skyd.cost == pytest.approx(asked.cost)
    # 5 h of slack: it leaves spot for the spike and waits it out idle...
    assert skyd.idle_hours == pytest.approx(2.0) and skyd.on_demand_hours == 0
    assert skyd.changeovers == 2  # ...and comes back after it
    up = simulate(POLICIES["up"], prepared, job)
    assert skyd.cost < up.cost  # up rides the spike out
    # 1 h of slack: too little to idle 2 h; it bridges the spike on demand.
    tight = Job(0, 600, 660 * UNIT, 12)
    bridged = simulate(POLICIES["skyd"], prepared, tight)
    assert bridged.cost == pytest.approx(simulate(POLICIES["skyd"], prepared, tight, True).cost)
    assert bridged.on_demand_hours > 0 and bridged.changeovers == 3
    assert bridged.cost < simulate(POLICIES["up"], prepared, tight).cost


@pytest.mark.parametrize(("spike_rows", "idle", "moves"), [(15, 1.5, 0), (20, 1.8, 1)])
def test_several_regions_a_spike_at_home_is_waited_out_while_the_slack_has_room(
    spike_rows: int, idle: float, moves: int
) -> None:
    # Two zones always up: $1/h in ra, but $6/h (twice on demand) for 1.5 or 2 h from
    # 2 h in; $1.2/h in rb. Moving to rb costs $1 of egress, and again to come back.
    rows = 400
    at = np.arange(rows)
    home = np.where((at >= 20) & (at < 20 + spike_rows), 6.0, 1.0)
    prices = np.stack([home, np.full(rows, 1.2)])
    prepared = make_zones(np.ones((2, rows), dtype=bool), regions=["ra", "rb"], prices=prices)
    job = Job(0, 600, 900 * UNIT, 12, migration_cost=1.0)  # 5 h of slack
    skyd = simulate(POLICIES["skyd"], prepared, job)
    asked = simulate(POLICIES["skyd"], prepared, job, every_row=True)
    assert skyd.cost == pytest.approx(asked.cost) and skyd.changeovers == asked.changeovers
    assert skyd.policy_calls < asked.policy_calls
    # The spike where the job ran is waited out idle while the slack is over
    # `spike_wait` reserves (here 3.2 h of the 5): a 1.5 h spike wholly, then back
    # home with no egress paid; a 2 h one for 1.8 h, then it moves to rb. (Before,
    # the slack over the reserve had to keep room for `migrate_patience`
    # changeovers: that one moved after 1.7 h.)
    assert skyd.idle_hours == pytest.approx(idle) and skyd.migrations == moves
    assert skyd.changeovers == 2


def test_changeover_and_job_length_are_not_rounded_to_probes() -> None:
    # 195 s probes, d = 0.2 h, a 10 h job: on a 15 s lattice, nothing rounds to 195 s.
    prepared = make_zones(np.ones((1, 400), dtype=bool), tick=195, unit=15)
    job = Job(10, 10 * 240, 14 * 3600.0, 48)
    for name in ("greedy", "up", "skyd"):
        result = simulate(POLICIES[name], prepared, job)
        assert result.changeovers == 1
        assert result.on_demand_hours == 0
        assert result.spot_hours == pytest.approx(10.2)  # not 10.217 (4 probes of d)
        assert result.finish_hours == pytest.approx(10.2)
    on_demand = simulate(POLICIES["on_demand"], prepared, job)
    assert on_demand.cost == pytest.approx(10.2 * 3.0)


def test_irregular_probes_are_billed_by_their_real_length() -> None:
    prepared = make_zones(np.ones((1, 300), dtype=bool), jitter=True)
    job = Job(0, 300, 10 * 3600.0, 12)
    result = simulate(POLICIES["greedy"], prepared, job)
    # Spot prices change per probe; bill them by each probe's real (irregular) length.
    times = prepared.times
    prices = prepared.lists[0].spot_price
    end = 312  # units: changeover + work
    expected = sum(
        prices[i] * (min(times[i + 1], end) - times[i]) * UNIT / 3600
        for i in range(len(prices))
        if times[i] < end
    )
    assert result.cost == pytest.approx(expected)


def test_no_spot_ever_uses_on_demand_in_time() -> None:
    prepared = make_zones(np.zeros((1, 200), dtype=bool))
    job = Job(0, 300, 500 * UNIT, 7)
    greedy = simulate(POLICIES["greedy"], prepared, job)
    assert not greedy.missed_deadline
    assert greedy.on_demand_hours == pytest.approx(307 * UNIT / 3600)
    # It idles as long as one more probe interval still leaves one changeover of slack.
    assert greedy.idle_hours > 0
    assert greedy.finish_hours * 3600 <= 500 * UNIT


def test_snapping_moves_probes_by_less_than_half_a_unit() -> None:
    stamps = np.array([0.0, 194.0, 391.0, 586.0, 866.0])
    times = snap_times(stamps, 195.0, 15)
    assert times[:-1] == [0, 13, 26, 39, 58]
    assert all(abs(t * 15 - s) <= 7.5 for t, s in zip(times, stamps, strict=False))
    with pytest.raises(ValueError, match="closer than"):
        snap_times(np.array([0.0, 5.0, 10.0]), 5.0, 15)


def test_a_probe_retried_seconds_later_gets_a_finer_lattice_not_an_error() -> None:
    # 195 s probes, d = 0.2 h, 48 h job: 15 s, unless two probes would share a row.
    stamps = np.array([0.0, 195.0, 390.0, 392.0, 585.0])
    assert lattice_seconds(195.0, 48.0, 0.2) == 15
    assert lattice_seconds(195.0, 48.0, 0.2, timestamps=stamps[[0, 1, 2, 4]]) == 15
    unit = lattice_seconds(195.0, 48.0, 0.2, timestamps=stamps)
    # 390 and 392 s share a row at 15 and 5 s; 3 s, a divisor of 15 (d and 48 h stay
    # exact), parts them (130 and 131)
    assert unit == 3
    assert snap_times(stamps, 195.0, unit)[:-1] == [0, 65, 130, 131, 195]
    # 195 and 198 s: 5 s parts them (39 and 40)
    assert lattice_seconds(195.0, 48.0, 0.2, timestamps=np.array([0.0, 195.0, 198.0])) == 5


def test_prefix_sum_statistics_equal_a_direct_computation() -> None:
    rng = np.random.default_rng(3)
    prepared = make_zones(flapping(rng, 2, 600, 5), jitter=True)
    times = np.asarray(prepared.times)
    for _ in range(200):
        first = int(rng.integers(0, 500))
        row = int(rng.integers(first + 1, 600))
        index = int(rng.integers(0, 2))
        got = zone_market(prepared, index, "r", row, first)
        flags = prepared.market.available[index]
        start = row
        while start > first and flags[start - 1] == flags[row]:
            start -= 1
        assert got.run_hours() == pytest.approx((times[row] - times[start]) * UNIT / 3600)
        window = flags[first:start]
        lengths = np.diff(times[first : start + 1]) * UNIT / 3600
        stats = got.settled_stats()
        if len(window) == 0:
            assert stats.observed_hours == 0
            continue
        up = lengths[window].sum()
        runs_up = int(window[0]) + int(np.count_nonzero(window[1:] & ~window[:-1]))
        assert stats.observed_hours == pytest.approx(lengths.sum())
        assert stats.fraction == pytest.approx(up / lengths.sum())
        if runs_up:
            assert stats.mean_up_hours == pytest.approx(up / runs_up)


def test_multi_zone_uniform_progress_on_one_zone_is_uniform_progress() -> None:
    # bench.spot relies on this to reuse up rows on single-zone runs.
    rng = np.random.default_rng(11)
    prepared = make_zones(flapping(rng, 1, 500, 4))
    for start in (0, 100, 250):
        job = Job(start, 540, 660 * UNIT, 7)
        single = simulate(POLICIES["up"], prepared, job)
        multi = simulate(POLICIES["up_multi"], prepared, job)
        assert single == multi


def test_best_single_zone_in_hindsight_is_the_cheapest_zone_alone_never_below_the_optimum() -> None:
    rng = np.random.default_rng(3)
    available = flapping(rng, 3, 400, 6)
    prices = np.round(rng.uniform(0.8, 1.2, (3, 400)), 3)
    regions = ["ra", "ra", "rb"]
    prepared = make_zones(available, regions=regions, jitter=True, prices=prices)
    starts = [0, 37, 90, 150]
    work, k = 360, 7
    deadlines = tuple(work / f * UNIT for f in (0.6, 0.8, 0.95))
    sizes = Lengths(UNIT, work, k, deadlines)
    best = optimal_costs(prepared.market, starts, work, k, deadlines, migration_cost=1.0)
    got = hindsight_zone_costs(prepared.market, starts, sizes)
    assert got.shape == best.shape
    assert np.all(got >= best - 1e-9)  # staying in one zone is one of the optimum's choices
    # Each zone built as a trace set of its own (same probes, its region's on demand).
    alone = [
        optimal_costs(
            make_zones(available[z : z + 1], [regions[z]], True, prices=prices[z : z + 1]).market,
            starts,
            work,
            k,
            deadlines,
        )
        for z in range(3)
    ]
    assert np.allclose(got, np.min(alone, axis=0))
    assert not np.allclose(got, alone[0])  # the best zone differs by start: a real min


def test_best_single_zone_in_hindsight_equals_the_optimum_when_one_zone_wins() -> None:
    # z0 flaps at $1.5/h in another region; z1 is always up at $1/h: the optimum stays in z1.
    rows = 200
    available = np.stack([flapping(np.random.default_rng(1), 1, rows, 5)[0], np.ones(rows)])
    prices = np.stack([np.full(rows, 1.5), np.full(rows, 1.0)])
    prepared = make_zones(available.astype(bool), regions=["rb", "ra"], prices=prices)
    starts, work, k = [0, 20, 55], 240, 12
    deadlines = (360.0 * UNIT, 300.0 * UNIT)
    best = optimal_costs(prepared.market, starts, work, k, deadlines, migration_cost=1.0)
    got = hindsight_zone_costs(prepared.market, starts, Lengths(UNIT, work, k, deadlines))
    assert np.allclose(best, (work + k) * UNIT / 3600 * 1.0)
    assert np.allclose(got, best)


def test_best_single_zone_in_hindsight_is_dearer_where_the_optimum_must_hop() -> None:
    # Same region (no egress), $1/h each: z0 up for the first 30 probes only, z1 from
    # then on only. A 4 h job with a 6 h deadline runs z0 then z1; one zone alone must
    # buy on demand (z0 after its spot is gone, z1 before its spot comes).
    rows = 100
    up_first = np.arange(rows) < 30
    available = np.stack([up_first, ~up_first])
    prices = np.ones((2, rows))
    prepared = make_zones(available, regions=["ra", "ra"], prices=prices)
    work, k = 240, 12
    deadlines = (360.0 * UNIT,)
    best = optimal_costs(prepared.market, [0], work, k, deadlines)
    got = hindsight_zone_costs(prepared.market, [0], Lengths(UNIT, work, k, deadlines))
    assert best[0, 0] == pytest.approx((work + 2 * k) * UNIT / 3600)  # two launches, all spot
    # Best alone: z0's 3 h of spot, then 1.4 h (d + the 72 min left) on demand at $3/h.
    assert got[0, 0] == pytest.approx(3.0 + 1.4 * 3.0)
    assert got[0, 0] > best[0, 0]
