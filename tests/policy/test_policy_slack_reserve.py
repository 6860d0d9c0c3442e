"""skyd's SlackReserve policy on hand-made states with known answers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from skyd.policy import IDLE, PolicyState, SlackReserve, Target, ZoneMarket
from skyd.policy.outages import outage_history
from skyd.policy.spot_run import SpotRunModel

D = 0.2
STEP = 0.05
POLICY = SlackReserve()
ON_DEMAND = Target.on_demand("ra")
SPOT = Target.spot("za", "ra")


def history(pattern: list[int], repeat: int = 1) -> np.ndarray:
    return np.array(pattern * repeat, dtype=bool)


# Up 2 h, down 2 h, for 8 days: a 4-hour cycle; ends 3 h into an outage.
CYCLES = np.concatenate([history([1] * 40 + [0] * 40, 48), history([0] * 20)])


def state(
    *,
    slack: float,
    remaining: float = 10.0,
    current: Target = IDLE,
    past: np.ndarray = CYCLES,
    zones: tuple[ZoneMarket, ...] | None = None,
    checkpoint: str | None = None,
) -> PolicyState:
    job = 20.0
    done = job - remaining
    deadline = 40.0
    elapsed = deadline - remaining - slack
    zones = zones or (ZoneMarket("za", "ra", bool(past[-1]), 1.0, past, STEP),)
    return PolicyState(
        job_hours=job,
        done_hours=done,
        deadline_hours=deadline,
        elapsed_hours=elapsed,
        changeover_hours=D,
        current=current,
        zones=zones,
        on_demand_prices={z.region: 3.0 for z in zones},
        step_hours=STEP,
        checkpoint_region=checkpoint,
    )


def test_reserve_grows_with_the_cycles_left_plus_the_net() -> None:
    s = state(slack=5.0)
    stats = POLICY.sizing.stats(s)
    assert stats.mean_up_hours + stats.mean_down_hours == 4.0
    cycle = POLICY.sizing.cycle_hours(stats)
    assert 3.9 < cycle <= 4.0  # 8 days of history outweigh the prior
    # Cycles are counted no shorter than min_cycle changeovers (7 h at 35, longer than
    # this 4 h one): 10 h of work left = 10 / 7 cycles; 5 changeovers of slack per
    # cycle ** 0.75; + 2d.
    counted = max(cycle, POLICY.min_cycle * D)
    assert counted == POLICY.min_cycle * D
    expected = 2 * D + POLICY.reserve_per_cycle * D * (10.0 / counted) ** POLICY.reserve_power
    assert POLICY.sizing.hours(s, stats) == pytest.approx(expected)
    linear = SlackReserve(reserve_per_cycle=3.0, reserve_power=1.0, min_cycle=1.0)
    assert linear.sizing.hours(s, stats) == 2 * D + 3 * D * 10.0 / cycle


def test_above_the_reserve_it_waits_out_an_outage() -> None:
    waiting = SlackReserve(allowance=float("inf"))  # no cap on one outage's wait
    decision = waiting.decide(state(slack=5.0))
    assert decision.target == IDLE
    reserve = waiting.sizing.hours(state(slack=5.0), waiting.sizing.stats(state(slack=5.0)))
    assert decision.recheck_after_hours == 5.0 - reserve


def test_below_the_reserve_it_bridges_the_outage_on_demand() -> None:
    assert POLICY.decide(state(slack=1.5)).target == ON_DEMAND
    # ... and keeps on-demand through it.
    assert POLICY.decide(state(slack=1.5, current=ON_DEMAND)).target == ON_DEMAND


def test_spot_is_taken_whenever_idle() -> None:
    up = np.concatenate([CYCLES, history([1])])
    assert POLICY.decide(state(slack=1.5, past=up)).target == SPOT
    assert POLICY.decide(state(slack=5.0, past=up)).target == SPOT


@pytest.fixture
def heavy_tails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Zones count as heavy-tailed whatever their runs: these tests' regular cycles
    (every run alike) would otherwise be ruled memoryless, which skips the proof."""
    monkeypatch.setattr(SpotRunModel, "heavy_tailed", lambda self, zone, evidence=0.0: True)


@pytest.mark.usefixtures("heavy_tails")
def test_below_the_reserve_a_returning_spot_run_must_prove_itself() -> None:
    just_back = np.concatenate([CYCLES, history([1])])
    s = state(slack=1.0, past=just_back, current=ON_DEMAND)
    held = POLICY.decide(s)
    assert held.target == ON_DEMAND and held.recheck_after_hours is not None
    # Patience: spot_patience changeovers, stretched by (reserve / slack) **
    # scarcity_power as slack is scarce; the run has lasted one 0.05 h sample.
    reserve = POLICY.sizing.hours(s, POLICY.sizing.stats(s))
    wanted = POLICY.spot_patience * D * (reserve / 1.0) ** POLICY.scarcity_power
    # CYCLES repeats every 4 h, so every day at this hour a run was 1 h from its end:
    # 8 ends in the 2 h windows over 160 up samples, against 1 per 40 overall, shrunk
    # by 1 prior end: the proof is stretched by (9 / 5) ** day_proof_power.
    stretch = POLICY.runs.time_of_day_hazard(s.zones[0]) ** POLICY.day_proof_power
    assert stretch == pytest.approx((9 / 5) ** POLICY.day_proof_power)
    # The reserve shrinks while on demand, so the run is proven a bit sooner than that.
    assert 0.2 < held.recheck_after_hours <= stretch * wanted - 0.05 + 1e-9
    lasting = np.concatenate([CYCLES, history([1] * 20)])
    assert POLICY.decide(state(slack=1.0, past=lasting, current=ON_DEMAND)).target == SPOT
    # Above the reserve it leaves on-demand at once.
    assert POLICY.decide(state(slack=5.0, past=just_back, current=ON_DEMAND)).target == SPOT


def test_where_runs_are_memoryless_a_returning_run_is_not_asked_to_prove_itself() -> None:
    # Every run of CYCLES lasts 2 h: no wider spread than a memoryless zone's, so a run's
    # age says nothing of its rest, and holding on demand to see it last learns nothing.
    just_back = np.concatenate([CYCLES, history([1])])
    assert not POLICY.runs.heavy_tailed(ZoneMarket("za", "ra", True, 1.0, just_back, STEP))
    s = state(slack=1.0, past=just_back, current=ON_DEMAND)
    assert POLICY.decide(s).target == SPOT  # the payback test alone decides
    # A rest too short to pay back the changeovers there and back is still not taken.
    nearly_over = np.concatenate([CYCLES, history([1] * 38)])
    held = POLICY.decide(state(slack=1.0, past=nearly_over, current=ON_DEMAND))
    assert held.target == ON_DEMAND
    assert held.reason == "spot run not expected to pay back its changeovers"


def test_the_last_two_changeovers_of_slack_may_still_leave_on_demand() -> None:
    # Slack for one more spot launch and the on-demand one after it (2d = 0.4 h), and
    # not 3d: a spot run that has proven itself (up 4 h) is taken with the last switch
    # the job can afford, rather than riding on demand to the end beside it.
    lasting = np.concatenate([CYCLES, history([1] * 80)])
    assert POLICY.decide(state(slack=0.59, past=lasting, current=ON_DEMAND)).target == SPOT
    # Below two changeovers it never leaves on demand, however long the run.
    kept = POLICY.decide(state(slack=0.39, past=lasting, current=ON_DEMAND))
    assert kept.target == ON_DEMAND


def test_safety_net() -> None:
    decision = POLICY.decide(state(slack=0.39))
    assert decision.target == ON_DEMAND and decision.reason == "safety net"
    on_spot = np.concatenate([CYCLES, history([1] * 3)])
    # On spot that is still up, it stays (a preemption leaves 2d - d >= d of slack).
    assert POLICY.decide(state(slack=0.39, past=on_spot, current=SPOT)).target == SPOT


def test_waits_for_its_home_region_rather_than_paying_egress_early() -> None:
    # Home's outage began 1 h ago (20 samples) after a 2-hour up run.
    home_past = np.concatenate([history([1] * 40 + [0] * 40, 48), history([1] * 40 + [0] * 20)])
    home = ZoneMarket("za", "ra", False, 1.0, home_past, STEP)
    # Away's spot is cheap enough to cost less per useful hour than home's even with the
    # egress: home is waited for as home, not as a cheaper zone.
    away = ZoneMarket("zb", "rb", True, 0.4, np.concatenate([CYCLES, history([1])]), STEP)
    s = state(slack=8.0, zones=(home, away), checkpoint="ra")
    s = _fields(s, migration=1.0)
    decision = POLICY.decide(s)
    # The home outage has lasted 1 h; patience is 8 changeovers = 1.6 h.
    assert decision.target == IDLE
    assert decision.recheck_after_hours is not None
    assert abs(decision.recheck_after_hours - 0.6) < 1e-9
    # Tight slack: it moves at once.
    tight = _fields(state(slack=1.5, zones=(home, away), checkpoint="ra"), migration=1.0)
    assert POLICY.decide(tight).target == Target.spot("zb", "rb")


def _fields(s: PolicyState, migration: float) -> PolicyState:
    from dataclasses import replace

    return replace(s, migration_cost=migration)


def test_allowance_bridges_an_outage_longer_than_its_share_of_the_spare_slack() -> None:
    # 10 h of work over 4-hour cycles: 2.5 outages ahead; the spare slack over the
    # reserve is shared between them, `allowance` shares for one outage at most.
    # (Cycles counted as they are, min_cycle = 20 changeovers = 4 h; reserve as cycles ** 0.75.)
    policy = SlackReserve(allowance=1.0, min_cycle=20.0, reserve_power=0.75)
    one_hour_in = np.concatenate([history([1] * 40 + [0] * 40, 48), history([1] * 40 + [0] * 20)])
    s = state(slack=5.0, past=one_hour_in)
    stats = policy.sizing.stats(s)
    reserve = policy.sizing.hours(s, stats)
    outages = 10.0 / policy.sizing.cycle_hours(stats)
    share = (5.0 - reserve) / outages
    waited = s.zones[0].run_hours()
    assert waited == 1.0 and share > waited  # (5 - 1.9) / 2.5 = 1.24 h
    decision = policy.decide(s)
    assert decision.target == IDLE
    # It looks again when waited + x = k (slack - x - reserve), k = 1 / outages.
    k = 1.0 / outages
    expected = (k * (5.0 - reserve) - waited) / (1 + k)
    assert decision.recheck_after_hours is not None
    assert abs(decision.recheck_after_hours - expected) < 1e-9
    # An outage that has outlasted its share (3 h) is bridged, well above the reserve.
    bridged = policy.decide(state(slack=5.0))
    assert bridged.target == ON_DEMAND and bridged.reason == "long outage: bridge"
    # Without an allowance it waits down to the reserve.
    endless = SlackReserve(allowance=float("inf"), min_cycle=20.0, reserve_power=0.75)
    assert endless.decide(state(slack=5.0)).target == IDLE


def test_spot_priced_above_on_demand_is_left_and_not_entered() -> None:
    lasting = np.concatenate([CYCLES, history([1] * 20)])
    spike = ZoneMarket("za", "ra", True, 3.5, lasting, STEP)  # on demand is $3.00
    # The reserve depends on the work left, not on the slack.
    reserve = POLICY.sizing.hours(state(slack=5.0), POLICY.sizing.stats(state(slack=5.0)))
    high, low = 2.5 * reserve, 1.5 * reserve
    s = state(slack=high, current=SPOT, zones=(spike,))
    # With slack over twice the reserve, it is left to wait the spike out idle ...
    waited = POLICY.decide(s)
    assert waited.target == IDLE and waited.recheck_after_hours is not None
    # ... with less, for on demand.
    left = POLICY.decide(state(slack=low, current=SPOT, zones=(spike,)))
    assert left.target == ON_DEMAND and left.reason == "spot above on-demand price"
    # Not entered either: with no spot worth having, it waits (above the reserve).
    assert POLICY.decide(state(slack=high, zones=(spike,))).target == IDLE
    # Under the price it is kept as before.
    cheap = ZoneMarket("za", "ra", True, 1.0, lasting, STEP)
    assert POLICY.decide(state(slack=high, current=SPOT, zones=(cheap,))).target == SPOT
    # With no room for the changeover to on demand, it stays on spot.
    assert POLICY.decide(state(slack=0.5, current=SPOT, zones=(spike,))).target == SPOT


def test_a_price_spike_in_the_checkpoints_region_is_waited_out_rather_than_moved_away_from() -> (
    None
):
    lasting = np.concatenate([CYCLES, history([1] * 20)])
    spike = ZoneMarket("za", "ra", True, 3.5, lasting, STEP)  # on demand is $3.00
    away = ZoneMarket("zb", "rb", True, 1.0, lasting, STEP)
    s = replace(state(slack=8.0, zones=(spike, away), checkpoint="ra"), migration_cost=1.0)
    spare = 8.0 - POLICY.sizing.hours(s, POLICY.sizing.stats(s))
    patience = POLICY.migrate_patience * D
    # The spike has no age to go by: it is waited out idle (no egress, no changeover
    # there and back) while the spare slack has room for `migrate_patience` changeovers ...
    waited = POLICY.decide(s)
    assert waited.target == IDLE and waited.reason == "wait: moving costs egress"
    assert waited.recheck_after_hours == pytest.approx(spare - patience)
    # ... on spot there when it began, too (with slack over twice the reserve) ...
    on_it = POLICY.decide(replace(s, current=SPOT))
    assert on_it.target == IDLE
    # ... and with less spare slack than that, the other region's spot is taken.
    short = replace(s, deadline_hours=s.deadline_hours - spare + patience - 0.1)
    assert POLICY.decide(short).target == Target.spot("zb", "rb")
    # A home outage that has lasted 3 h (over the patience): it moves, as before, where
    # the other region costs less per useful hour even with the egress (were home the
    # cheaper, its outage could take a single zone's share of the slack).
    cheap_away = replace(away, spot_price=0.4)
    calm = replace(s, zones=(ZoneMarket("za", "ra", False, 1.0, CYCLES, STEP), cheap_away))
    assert POLICY.decide(calm).target == Target.spot("zb", "rb")


def test_several_zones_the_run_that_has_lasted_is_picked_over_a_fresh_one() -> None:
    # Zone "long" has long runs (up 10 h, down 2 h) but its run came back 3 minutes
    # ago; zone "short" has short runs (four of 0.1 h, then one of 2.5 h: heavy-
    # tailed, their spread twice a memoryless zone's) but its run has lasted 3 h. A
    # run that has outlasted every one its zone has shown is the better bet there,
    # and each preemption costs a changeover the job may need later. (Where runs are
    # not heavy-tailed its age says nothing: tests/policy/test_policy_zone_choice.py.)
    fresh = np.concatenate([history([1] * 200 + [0] * 40, 20), history([0] * 40 + [1])])
    cycle = [1] * 2 + [0] * 20
    old = np.concatenate([history(cycle * 4 + [1] * 50 + [0] * 20, 30), history([1] * 60)])
    assert POLICY.runs.heavy_tailed(ZoneMarket("short", "ra", True, 1.0, old, STEP))
    zones = (
        ZoneMarket("long", "ra", True, 1.0, fresh[-len(old) :], STEP),
        ZoneMarket("short", "ra", True, 1.0, old, STEP),
    )
    # (These runs repeat every 12 h and 2 h, so at this hour "long" was up for 8 more
    # hours every day; the pick ranks runs of any age, and the hours after an old run's
    # start say nothing about now, so it does not read the time of day.)
    assert POLICY.runs.time_of_day_hazard(zones[0]) < 1.0
    # Below the reserve (every changeover counts) the run that has lasted is taken ...
    assert POLICY.decide(state(slack=1.0, zones=zones)).target == Target.spot("short", "ra")
    # ... above it, the zone whose runs last on average.
    assert POLICY.decide(state(slack=8.0, zones=zones)).target == Target.spot("long", "ra")


def _day(ends_at: list[float]) -> list[int]:
    """One day of 0.05 h samples, up but for a 0.5 h outage from each hour in `ends_at`."""
    day = [1] * 480
    for hour in ends_at:
        start = int(hour / STEP)
        day[start : start + 10] = [0] * 10
    return day


@pytest.mark.usefixtures("heavy_tails")
def test_a_run_begun_at_an_hour_when_runs_end_must_prove_itself_longer() -> None:
    # For a week, spot was taken back every day at 10:00 and 20:00. Today it was also
    # down for a while before the run now starting: at 09:00, a run of earlier days
    # ended within the hour; at 14:00 none did for 6 h.
    week = history(_day([10.0, 20.0]), 7)

    def returning_at(hour: float) -> PolicyState:
        today = _day([10.0, 20.0])[: int(hour / STEP)]
        today[-10:] = [0] * 10  # down for the last 0.5 h
        past = np.concatenate([week, history(today), history([1])])
        return state(slack=1.0, past=past, current=ON_DEMAND)

    assert POLICY.decide(returning_at(9.0)).target == ON_DEMAND  # both must prove ...
    assert POLICY.decide(returning_at(14.0)).target == ON_DEMAND  # ... themselves
    # ... 09:00 longer. Without the time of day, the two runs look alike (today's extra
    # outage before 14:00 moves the week's statistics a little).
    _the_hour_decides(
        returning_at(9.0), returning_at(14.0), SlackReserve(day_window_hours=0.0), 1.5, 0.1
    )


def _the_hour_decides(
    longer: PolicyState, shorter: PolicyState, blind: SlackReserve, factor: float, alike: float
) -> None:
    """POLICY waits `factor`× longer in `longer` than `shorter`; `blind` about the same."""
    long, short = (
        POLICY.decide(longer).recheck_after_hours,
        POLICY.decide(shorter).recheck_after_hours,
    )
    a, b = blind.decide(longer).recheck_after_hours, blind.decide(shorter).recheck_after_hours
    assert long is not None and short is not None and a is not None and b is not None
    assert long > factor * short
    assert a == pytest.approx(b, rel=alike)
    assert short < min(a, b) and long > max(a, b)


def test_an_outage_begun_at_an_hour_when_outages_end_soon_is_waited_out_longer() -> None:
    # For a week, spot was down every day from 10:00 for a quarter of an hour and from
    # 20:00 for three hours. Above the reserve, an outage beginning today at 10:00 may
    # take a larger share of the slack before it is bridged than one beginning at 20:00.
    day = [1] * 480
    day[200:205] = [0] * 5  # 10:00-10:15
    day[400:460] = [0] * 60  # 20:00-23:00
    week = history(day, 7)

    def outage_from(hour: float) -> PolicyState:
        today = day[: int(hour / STEP)]
        past = np.concatenate([week, history(today), history([0])])
        return state(slack=3.0, past=past)

    assert POLICY.decide(outage_from(10.0)).target == IDLE
    assert POLICY.decide(outage_from(20.0)).target == IDLE
    # Without the time of day the two outages are given the same.
    _the_hour_decides(
        outage_from(10.0), outage_from(20.0), SlackReserve(day_outage_power=0.0), 1.2, 0.05
    )


def test_a_spike_on_the_last_zone_is_waited_out_even_with_another_zone_up() -> None:
    lasting = np.concatenate([CYCLES, history([1] * 20)])
    spiked = ZoneMarket("za", "ra", True, 3.5, lasting, STEP)  # on demand is $3.00
    other = ZoneMarket("zb", "ra", True, 1.2, lasting, STEP)  # same region: no egress
    s = replace(state(slack=8.0, zones=(spiked, other)), last_zone="za")
    reserve = POLICY.sizing.hours(s, POLICY.sizing.stats(s))
    assert POLICY.spike_wait * reserve < 8.0
    # Left (or not yet re-entered) for the spike: idle until the slack is down to
    # `spike_wait` reserves, rather than riding the pricier zone until it is preempted.
    waited = POLICY.decide(s)
    assert waited.target == IDLE and waited.reason == "wait: spot priced above on demand"
    assert waited.recheck_after_hours == pytest.approx(8.0 - POLICY.spike_wait * reserve)
    assert POLICY.decide(replace(s, current=SPOT)).target == IDLE
    # With less slack than that, the other zone is taken; so it is when the spiked
    # zone is not where the job last ran.
    tight = replace(s, deadline_hours=s.deadline_hours - 8.0 + 1.5 * reserve)
    assert POLICY.decide(tight).target == Target.spot("zb", "ra")
    assert POLICY.decide(replace(s, last_zone="zb")).target == Target.spot("zb", "ra")


def test_above_the_reserve_a_cheaper_zone_briefly_out_is_waited_for() -> None:
    lasting = np.concatenate([CYCLES, history([1] * 20)])
    # The cheap zone went out 0.1 h ago (2 samples) after a 2 h run.
    just_out = np.concatenate([CYCLES, history([1] * 40 + [0] * 2)])
    cheap = ZoneMarket("za", "ra", False, 0.8, just_out, STEP)
    pricier = ZoneMarket("zb", "ra", True, 1.2, lasting, STEP)
    patience = POLICY.cheaper_patience * D

    def share_left(s: PolicyState, age: float) -> float:
        return POLICY._outage_cap(
            s, POLICY.sizing.stats(s), POLICY.sizing.hours(s, POLICY.sizing.stats(s)), age
        )

    # Ample slack: the outage may take the share of the slack a single zone's would,
    # hours more than the patience.
    s = state(slack=8.0, zones=(cheap, pricier))
    waited = POLICY.decide(s)
    assert waited.target == IDLE and waited.reason == "wait: a cheaper zone is out"
    assert share_left(s, 0.1) > patience
    assert waited.recheck_after_hours == pytest.approx(share_left(s, 0.1))
    # A zone only a little cheaper (within `cheaper_margin`) is given the patience alone.
    slightly = replace(s, zones=(replace(cheap, spot_price=1.19), pricier))
    assert POLICY.decide(slightly).recheck_after_hours == pytest.approx(patience - 0.1)
    # Just over the reserve, the share is less than the patience, which then decides.
    reserve = POLICY.sizing.hours(s, POLICY.sizing.stats(s))
    near = replace(s, deadline_hours=s.deadline_hours - 8.0 + reserve + 0.32)
    assert share_left(near, 0.1) < patience - 0.1
    assert POLICY.decide(near).recheck_after_hours == pytest.approx(patience - 0.1)
    # Out for longer than both: the pricier zone is taken.
    long_out = np.concatenate([CYCLES, history([1] * 40 + [0] * 30)])
    late = replace(near, zones=(replace(cheap, history=long_out), pricier))
    assert share_left(late, 1.5) < 0
    assert POLICY.decide(late).target == Target.spot("zb", "ra")
    # A cheaper zone never seen up may be out for good: only the patience is given it.
    never_up = replace(s, zones=(replace(cheap, history=history([0] * len(just_out))), pricier))
    assert POLICY.decide(never_up).target == Target.spot("zb", "ra")
    # Below the reserve slack is worth more than the price difference: taken at once.
    scarce = replace(s, deadline_hours=s.deadline_hours - 8.0 + 0.9 * reserve)
    assert POLICY.decide(scarce).target == Target.spot("zb", "ra")
    # A pricier zone that is out is not waited for, nor is any with the rule off.
    dear = replace(s, zones=(replace(cheap, spot_price=1.5), pricier))
    assert POLICY.decide(dear).target == Target.spot("zb", "ra")
    assert SlackReserve(cheaper_patience=0).decide(s).target == Target.spot("zb", "ra")


def test_several_zones_whose_union_never_went_out_plan_with_their_own_runs() -> None:
    # Two zones with 10 h runs, out by turns, so that one of them is always up: the
    # union has no outage to learn from, but the zones' runs have been seen for days.
    a = history([1] * 200 + [0] * 20, 16)
    b = np.roll(a, 110)
    s = state(
        slack=8.0,
        zones=(
            ZoneMarket("za", "ra", bool(a[-1]), 1.0, a, STEP),
            ZoneMarket("zb", "ra", bool(b[-1]), 1.0, b, STEP),
        ),
    )
    assert outage_history(s).all()
    stats = POLICY.sizing.stats(s)
    assert stats.observed_hours > 100
    assert stats.mean_up_hours == pytest.approx(10.0, rel=0.1)
    # The cycle is the zones' (blended with the prior by days seen), not the prior's 4 h.
    assert POLICY.sizing.cycle_hours(stats) > 8.0
