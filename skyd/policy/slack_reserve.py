"""skyd's own policy: spend slack greedily, but keep a reserve sized to the rest of the job.

Slack (time to deadline minus work left) is the budget every policy spends: idle
time and changeovers consume it, running on spot or on demand does not. Greedy spends
it all waiting for spot and then finishes on demand, blind to spot; Uniform Progress
buys on-demand early to stay on a straight line and pays a changeover each time it
drifts across it. This policy:

* above a slack reserve, waits for spot: idle through outages, spot whenever it is
  up (with several regions, it idles a while for the checkpoint's region rather than
  paying egress at once — with slack under `spike_wait` reserves only if that region
  is likely back by then, and below the reserve for a likely short outage there
  (`ZoneChoice.wait_for_short_home_outage`) —, a price spike there for as long as the slack over the
  reserve keeps room for that while, and picks the zone with the lowest expected
  cost per useful hour); but one outage may only take `allowance` times its share
  of the slack over the reserve (that slack shared between the outages still
  expected), so a long outage is bridged on demand before it drains what later
  short ones need;
* sizes the reserve to what the endgame needs to keep using spot: `reserve_per_cycle`
  changeovers per expected up/down cycle of the remaining work (cycle lengths from the
  zone's own availability history, blended with a prior while history is short, and
  never counted shorter than `min_cycle` changeovers: flickers do not each need a
  reserve), plus Uniform Progress' safety net;
* below the reserve, bridges each outage on demand, to its end, unless the zone's
  past outages say this one is likely short: while at least `short_outage` of those
  that lasted as long ended within one more changeover, it waits (bridging costs two
  changeovers, waiting only the outage), up to `outage_patience` changeovers;
* leaves on-demand for returning spot at once above the reserve, and below it, where
  the zone's runs are heavy-tailed (their spread over their mean above 1; a memoryless
  run's age says nothing), only once the spot run has lasted `spot_patience`
  changeovers, stretched as slack gets scarce (heavy-tailed runs: most are short, one
  that has lasted tends to last) and by the time of day (below), and only with room
  for the changeover there and the one back, no more: the last switch a job can
  afford is kept usable, so a job that spent its slack early is not held on demand
  beside a long spot run;
  either way only when the run's expected rest (the mean rest of past runs that
  lasted as long) saves on spot `switch_payback` times what the changeovers there
  and back cost;
* reads the time of day: spot is taken back more at some hours than others (demand
  follows the working day), so a run's expected rest is divided by how much likelier
  than usual the zone's runs ended in the `day_window_hours` after its start time on
  earlier days, and its proof is stretched by that ratio ** `day_proof_power`
  (`SpotRunModel`; not when ranking zones, whose runs may be far older); and the
  share of the slack one outage may take above the reserve is scaled by how much
  likelier than usual outages ended in that window after its start time
  (** `day_outage_power`);
* never launches spot whose past runs of that age ended, on average, before a
  changeover would be over; among several zones, picks the one whose run costs
  least per useful hour; with slack below the reserve, expecting it to last what
  the zone's runs of its age went on to last but at least `age_trust` times its
  age, and pricing the end of its run at the on-demand hours one spot start fewer
  is expected to cost the rest of the job (`slack_value`); above the reserve,
  idles for a cheaper zone that is out rather than take a pricier one, while its
  outage is younger than
  `cheaper_patience` changeovers or, if it is cheaper by more than
  `cheaper_margin`, still within the share of the slack an outage of the job's
  only zone would get (`allowance`, above) (`ZoneChoice`);
* never enters spot priced above on demand, and leaves a spot instance whose price
  spikes above it while the slack has room for that changeover: with slack over
  `spike_wait` times the reserve to wait the spike out idle (even with other zones
  up; with several regions, idle rather than in another region while the slack over
  the reserve keeps room for `migrate_patience` changeovers), else for another
  zone's spot that is up, or with none, for on demand;
* has Uniform Progress' safety net: off spot with less than two changeovers of slack
  (plus a step's margin), on-demand to the end. No deadline is ever missed.

The constants are chosen by leave-one-zone-out cross-validation on the shipped V100
traces (`python -m bench.spot.cv`; figures in bench/spot/README.md).

Everything it reads from the history is computed up to the last availability change,
and prices are read as they are now, so between two availability or price changes
its answer only moves with time (the slack, and the age of the current run or
outage crossing a past run's length), and it says when (`recheck_after_hours`,
never late).
"""

from __future__ import annotations

import math
from dataclasses import replace

from skyd.policy.availability import (
    AvailabilityStats,
)
from skyd.policy.baselines import (
    EPS,
    on_demand_target,
    rotated_zones,
    spot_entry_is_safe,
    spot_still_available,
    step_margin,
)
from skyd.policy.outages import (
    outage_age_hours,
    outage_hour_ratio,
    short_outage_wait,
)
from skyd.policy.reserve import ReserveSizing
from skyd.policy.spot_run import SpotRunModel
from skyd.policy.state import IDLE, Decision, PolicyState, Target, ZoneMarket
from skyd.policy.zone_choice import ZoneChoice, on_demand_price


class SlackReserve:
    """Greedy while slack is above a reserve sized to the endgame; bridges outages below it."""

    name = "skyd"
    safe = True

    def __init__(
        self,
        reserve_per_cycle: float = 5.0,
        prior_cycle_hours: float = 4.0,
        prior_hours: float = 24.0,
        spot_patience: float = 1.0,
        migrate_patience: float = 8.0,
        scarcity_power: float = 1.5,
        allowance: float = 5.0,
        min_cycle: float = 35.0,
        reserve_power: float = 0.85,
        switch_payback: float = 1.0,
        short_outage: float = 0.5,
        outage_patience: float = 3.0,
        prior_runs: float = 5.0,
        spike_wait: float = 2.0,
        age_trust: float = 5.0,
        day_window_hours: float = 2.0,
        day_proof_power: float = 0.5,
        day_prior_ends: float = 1.0,
        day_outage_power: float = 1.0,
        cheaper_patience: float = 2.0,
        cheaper_margin: float = 0.05,
        tail_evidence: float = 1.0,
    ) -> None:
        # Changeovers of slack kept per expected up/down cycle of the remaining work.
        self.reserve_per_cycle = reserve_per_cycle
        # Cycle length assumed for a zone with no history yet, and how much
        # observed history it takes to trust the zone's own figure half-way.
        self.prior_cycle_hours = prior_cycle_hours
        self.prior_hours = prior_hours
        # Age (in changeovers) a returning spot run must reach before on-demand is left.
        self.spot_patience = spot_patience
        # Outage age (in changeovers) of the checkpoint's region worth waiting out
        # rather than paying egress to move, while the slack is above the reserve.
        self.migrate_patience = migrate_patience
        # How much more a spot run must prove itself as slack gets scarce.
        self.scarcity_power = scarcity_power
        # Above the reserve, the slack over it is shared out between the outages still
        # expected: one is waited out for at most `allowance` times its share.
        self.allowance = allowance
        # Shortest cycle (in changeovers) the reserve counts: flickers shorter than that
        # are ridden through on spot or bridged once, not paid for one by one.
        self.min_cycle = min_cycle
        # The reserve grows as cycles ** reserve_power (1: in proportion to them).
        self.reserve_power = reserve_power
        # On demand is left for a returning spot run only if the run's expected rest
        # saves `switch_payback` times what its two changeovers (there and back) cost.
        self.switch_payback = switch_payback
        # An outage is waited out rather than bridged while at least this share of
        # the outages seen that lasted as long ended within one more changeover, ...
        # Not tuned: at a share p, waiting one changeover d costs at most p·d +
        # (1 - p)·3d of slack (the wait, then the bridge's two changeovers), bridging
        # 2d, so from p = 1/2 on waiting never costs more slack, and never more money.
        # (LOZO CV on the shipped set cannot tell 0.5 from 1.1, never waiting: its
        # outages are seldom shorter than d; bench/spot/README.md.)
        self.short_outage = short_outage
        # ... up to an outage age of `outage_patience` changeovers.
        self.outage_patience = outage_patience
        # How many observed runs it takes to trust their mean half-way (vs the prior).
        self.prior_runs = prior_runs
        # A price spike (spot above on demand) has no age to cap its wait by: it is
        # waited out idle only with slack over `spike_wait` times the reserve.
        self.spike_wait = spike_wait
        # Several zones, slack below the reserve: a zone's run is expected to last at
        # least `age_trust` times as long as it already has where its zone's runs are
        # heavy-tailed (ZoneChoice.pick). Only ranks zones: one zone alone is never
        # affected. (The end of the run is priced by `slack_value`, with no constant:
        # a fixed 20 changeovers on demand, chosen by cross-validation on the V100
        # zones, made jobs on 13 alike memoryless zones chase slightly longer runs
        # across regions: 22 % above the optimum at 0.95, 4 % priced by the model.)
        self.age_trust = age_trust
        # Spot is taken back more often at some hours of the day than others: a run's
        # expected rest is divided by how much likelier its zone's runs ended in the
        # `day_window_hours` after that clock time on earlier days (0: off), and the
        # proof asked of it below the reserve stretched by that ratio ** power. A week
        # holds only seven such windows: `day_prior_ends` ends at the zone's usual rate
        # are assumed there on top of those seen, pulling the ratio towards 1.
        self.day_window_hours = day_window_hours
        self.day_proof_power = day_proof_power
        self.day_prior_ends = day_prior_ends
        # Outages end sooner at some hours too: above the reserve, the share of the
        # slack one outage may take is scaled by (how much likelier than usual outages
        # ended in the window after this one's start time) ** `day_outage_power`.
        self.day_outage_power = day_outage_power
        # Above the reserve, a cheaper zone's outage younger than `cheaper_patience`
        # changeovers is waited out rather than a pricier zone taken (ZoneChoice).
        self.cheaper_patience = cheaper_patience
        # ... and one cheaper per useful hour by more than `cheaper_margin` is waited for
        # while its outage is within the share of the slack a single zone's would get.
        self.cheaper_margin = cheaper_margin
        # Several zones: the ranking trusts a zone's old run to last (`age_trust`) only
        # where its runs' CV is `tail_evidence` standard errors over a memoryless zone's.
        # Not tuned: one standard error. At 0 (a bare CV > 1), a third of a memoryless
        # zone's weeks read as heavy-tailed and the ranking chased old runs across
        # regions: 13 alike memoryless zones (`--family many-zones`, seed 1) at 0.95 were
        # 45 % above the optimum, 22 % at 1; at 2, the 9 V100 zones at 0.95 went from
        # 7.6 % to 10.4 % (their week windows hold 15-50 runs). One zone is never affected.
        self.tail_evidence = tail_evidence
        self.sizing = ReserveSizing(
            reserve_per_cycle, prior_cycle_hours, prior_hours, min_cycle, reserve_power
        )
        self.runs = SpotRunModel(
            prior_cycle_hours, prior_hours, prior_runs, day_window_hours, day_prior_ends
        )
        self.zones = ZoneChoice(
            self.runs,
            age_trust,
            migrate_patience,
            cheaper_patience,
            cheaper_margin,
            short_outage,
            prior_runs,
            tail_evidence,
        )

    def _switch_wait(self, state: PolicyState, zone: ZoneMarket) -> float | None:
        """None when leaving on demand for this spot run pays back its changeovers.

        Otherwise the hours until that can change (None again: never, by age alone),
        as inf. On spot the run's expected rest saves (on demand − spot) per hour; it
        costs a changeover there and one back to on demand when the run ends (billed at
        the on-demand price, the work they do not do is done on demand), plus egress.
        """
        outlook = self.runs.outlook(zone)
        on_demand = state.on_demand_prices.get(str(state.current.region), zone.spot_price)
        saving = (on_demand - zone.spot_price) * outlook.residual_hours
        cost = 2 * state.changeover_hours * on_demand + state.migration_cost_to(zone.region)
        if saving >= self.switch_payback * cost - EPS:
            return None
        nxt = outlook.next_change_hours
        return math.inf if nxt is None else nxt

    def _outage_hour_ratio(self, state: PolicyState) -> float:
        if self.day_window_hours <= 0:
            return 1.0
        return outage_hour_ratio(state, self.day_window_hours, self.day_prior_ends)

    def decide(self, state: PolicyState) -> Decision:
        if state.finished:
            return Decision(IDLE, reason="done")
        d = state.changeover_hours
        margin = step_margin(state)
        safety_net = 2 * d + margin
        if spot_still_available(state):
            running = state.zone_market(str(state.current.zone))
            pricier = running is not None and running.spot_price > on_demand_price(state, running)
            if not pricier:
                return Decision(state.current, reason="stay on spot until preempted")
            # Spot priced above on demand (a price spike) is left, if the slack still
            # has room for the changeover that leaving costs: with slack well over the
            # reserve to wait the spike out like an outage; else for another zone's
            # spot as after a preemption, or, with none up, for on demand. (Straight
            # to on demand beside zones that were up, a synthetic zone set's jobs
            # at 0.95 paid two changeovers to come back to spot minutes later.)
            if state.slack_hours < safety_net + d - EPS:
                return Decision(state.current, reason="spot above on demand: no room to leave")
            reserve = self.sizing.hours(state, self.sizing.stats(state))
            left = replace(state, current=IDLE, overhead_left_hours=0.0)
            if state.slack_hours <= self.spike_wait * reserve + EPS and not any(
                self._open_zones(left)[0]
            ):
                return Decision(on_demand_target(state), reason="spot above on-demand price")
            state = left
        if state.slack_hours < safety_net - EPS:
            return Decision(on_demand_target(state), reason="safety net")
        stats = self.sizing.stats(state)
        reserve = self.sizing.hours(state, stats)
        open_zones, skipped = self._open_zones(state)
        decision = self._decide_off_spot(state, stats, reserve, open_zones)
        if skipped is not None and decision.target.is_idle:
            # A skipped zone's run may be worth entering once it has lasted longer.
            recheck = decision.recheck_after_hours
            decision = replace(
                decision, recheck_after_hours=skipped if recheck is None else min(recheck, skipped)
            )
        return decision

    def _open_zones(self, state: PolicyState) -> tuple[list[ZoneMarket], float | None]:
        """Zones worth launching spot in now, and when a skipped one may become worth it.

        Off on-demand, a zone whose runs of this age have ended on average before a
        changeover is over is skipped: the launch would be paid for nothing (on
        demand, the payback test of leaving it is stricter).
        """
        d = state.changeover_hours
        open_zones: list[ZoneMarket] = []
        skipped: float | None = None
        for z in rotated_zones(state):
            if not z.available or z.spot_price > on_demand_price(state, z):
                continue
            if not spot_entry_is_safe(state, z):
                continue
            if not state.current.is_on_demand:
                outlook = self.runs.outlook(z)
                if outlook.residual_hours < d - EPS:
                    change = outlook.next_change_hours
                    if change is not None:
                        skipped = change if skipped is None else min(skipped, change)
                    continue
            open_zones.append(z)
        return open_zones, skipped

    def _decide_off_spot(
        self,
        state: PolicyState,
        stats: AvailabilityStats,
        reserve: float,
        open_zones: list[ZoneMarket],
    ) -> Decision:
        """Idle or on demand (or on spot priced out): where to go next."""
        d = state.changeover_hours
        margin = step_margin(state)
        safety_net = 2 * d + margin
        slack = state.slack_hours
        current = state.current
        if open_zones:
            # below the reserve, what a run's end costs: read once for the whole decision
            worth = self.zones.end_worth(state) if slack <= reserve + EPS else None
            zone = self.zones.pick(state, open_zones, worth)
            target = Target.spot(zone.zone, zone.region)
            if not current.is_on_demand:
                return self._take_or_wait(state, stats, reserve, zone, open_zones, worth)
            # Leaving on-demand costs this changeover and, likely, one back later: the
            # open zones all leave room for both (spot_entry_is_safe), and no more is
            # kept back. The last switch a job can afford is its most valuable one: it
            # is what keeps a job that spent its slack early from riding on demand
            # through a long spot run (at fraction 0.95 that alone took the gap from
            # 14.5 % to 12.4 % above the optimum; bench/spot/README.md).
            if slack <= reserve + EPS and self.runs.heavy_tailed(zone):
                # Short spot runs are common: below the reserve, let it prove itself.
                # (Where runs are memoryless its age says nothing of its rest: waiting on
                # demand for it to prove itself would pay on demand beside spot to learn
                # nothing, and the payback test below decides alone. On the synthetic
                # zones at 0.9 that took skyd from 0.34 / 0.48 / 0.45 of Uniform
                # Progress' gap to 0.32 / 0.40 / 0.37.)
                lasted = zone.run_hours()
                stretch = self.runs.time_of_day_hazard(zone) ** self.day_proof_power
                if lasted < stretch * self._wanted_run(state, reserve, slack) - EPS:
                    return Decision(
                        current,
                        recheck_after_hours=self._until_proven(
                            state, stats, reserve, lasted, stretch
                        ),
                        reason="spot just back",
                    )
            until = self._switch_wait(state, zone)
            if until is not None:
                return Decision(
                    current,
                    recheck_after_hours=None if math.isinf(until) else until,
                    reason="spot run not expected to pay back its changeovers",
                )
            return Decision(target, reason="spot is back")
        if current.is_on_demand:
            # An outage being bridged is bridged to its end: stopping half-way would
            # pay a changeover again if spot stays away.
            return Decision(current, reason="bridge the outage")
        waited = outage_age_hours(state)
        reason = "bridge the outage"
        if slack > reserve + EPS:
            # Idle: slack falls one hour per hour; the reserve stays put.
            cap = self._outage_cap(state, stats, reserve, waited)
            if cap > EPS:
                recheck = min(slack - reserve, cap)
                return Decision(IDLE, recheck_after_hours=recheck, reason="above reserve: wait")
            reason = "long outage: bridge"
        wait = short_outage_wait(
            state, waited, safety_net, self.short_outage, self.outage_patience, self.prior_runs
        )
        if wait is not None:
            return Decision(IDLE, recheck_after_hours=wait, reason="outage likely short: wait")
        return Decision(on_demand_target(state), reason=reason)

    def _outage_cap(
        self,
        state: PolicyState,
        stats: AvailabilityStats,
        reserve: float,
        waited: float,
    ) -> float:
        """Hours more an outage `waited` old may be waited out idle above the reserve."""
        if not math.isfinite(self.allowance):
            return math.inf
        d = state.changeover_hours
        outages = max(1.0, state.remaining_hours / self.sizing.counted_cycle(stats, d))
        k = self.allowance / outages
        if self.day_outage_power:
            k *= self._outage_hour_ratio(state) ** self.day_outage_power
        # The share falls as the slack does: waited + x = k * (slack - x - reserve).
        return (k * (state.slack_hours - reserve) - waited) / (1 + k)

    def _take_or_wait(
        self,
        state: PolicyState,
        stats: AvailabilityStats,
        reserve: float,
        zone: ZoneMarket,
        open_zones: list[ZoneMarket],
        worth: float | None,
    ) -> Decision:
        """Off on demand, with `zone` the best one up: take it, or idle for a better one
        (`worth`: `ZoneChoice.end_worth`, given below the reserve)."""
        slack = state.slack_hours
        target = Target.spot(zone.zone, zone.region)
        if slack > self.spike_wait * reserve + EPS and self.zones.spiked_last_zone(state):
            # The spike is waited out idle, as it would be with no other zone up: another
            # zone taken now is ridden until preempted, at its price (synthetic zone sets
            # at job fraction 0.6: 0.5-0.7 points closer to the optimum this way).
            return Decision(
                IDLE,
                recheck_after_hours=slack - self.spike_wait * reserve,
                reason="wait: spot priced above on demand",
            )
        if slack > reserve + EPS:
            wait = self.zones.wait_for_cheaper(
                state,
                zone,
                slack - reserve,
                lambda age: self._outage_cap(state, stats, reserve, age),
            )
            if wait is not None:
                return Decision(
                    IDLE, recheck_after_hours=wait, reason="wait: a cheaper zone is out"
                )
        scarce = slack <= self.spike_wait * reserve + EPS
        wait = self.zones.wait_for_home(state, zone, slack - reserve, scarce)
        if wait is not None:
            return Decision(IDLE, recheck_after_hours=wait, reason="wait: moving costs egress")
        if worth is not None:  # below the reserve
            home = self.zones.stay_in_region(state, zone, open_zones, worth)
            if home is not None:
                return Decision(
                    Target.spot(home.zone, home.region), reason="take spot: a move would not pay"
                )
            wait = self.zones.wait_for_short_home_outage(state, zone, self.outage_patience, worth)
            if wait is not None:
                return Decision(IDLE, recheck_after_hours=wait, reason="wait: short outage at home")
        return Decision(target, reason="take spot")

    def _wanted_run(self, state: PolicyState, reserve: float, slack: float) -> float:
        """How long a returning spot run must have lasted before on-demand is left for it.

        (Before its time-of-day stretch: `SpotRunModel.time_of_day_hazard`.)
        """
        scarcity = float((reserve / max(slack, EPS)) ** self.scarcity_power)
        return self.spot_patience * state.changeover_hours * max(1.0, scarcity)

    def _until_proven(
        self,
        state: PolicyState,
        stats: AvailabilityStats,
        reserve: float,
        lasted: float,
        stretch: float,
    ) -> float:
        """Hours on demand until the spot run counts as proven (a lower bound, so never late).

        On demand the slack holds while the reserve shrinks with the work done, so the
        wanted run length falls as the run's age grows: bisect for the crossing.
        """
        overhead = state.overhead_left_hours
        if overhead > 0:
            # During the changeover the slack shrinks too; look again when it is over.
            return overhead
        slack = state.slack_hours
        left = state.remaining_hours

        def proven(h: float) -> bool:
            shrunk = self.sizing.hours_for(state, stats, max(0.0, left - h))
            if shrunk < slack:
                return True
            return lasted + h >= stretch * self._wanted_run(state, shrunk, slack) - EPS

        low, high = 0.0, max(0.0, stretch * self._wanted_run(state, reserve, slack) - lasted)
        for _ in range(40):
            middle = (low + high) / 2
            if proven(middle):
                high = middle
            else:
                low = middle
        return low
