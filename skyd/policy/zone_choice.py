"""Several zones: which spot zone to take, and when to idle for a better one instead."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from skyd.policy.baselines import EPS, step_margin
from skyd.policy.outages import back_within
from skyd.policy.slack_value import changeover_worth
from skyd.policy.spot_run import SpotRunModel
from skyd.policy.state import PolicyState, ZoneMarket


def on_demand_price(state: PolicyState, zone: ZoneMarket) -> float:
    """On demand in the zone's region (else the cheapest region): what spot must undercut."""
    prices = state.on_demand_prices
    if zone.region in prices:
        return prices[zone.region]
    return min(prices.values()) if prices else float("inf")


def priced_out(state: PolicyState, zone: ZoneMarket) -> bool:
    """Up, but its spot priced above on demand (a price spike)."""
    return zone.available and zone.spot_price > on_demand_price(state, zone)


@dataclass(frozen=True, slots=True)
class ZoneChoice:
    """The zone ranking and the waits for a better zone of `SlackReserve` (its constants)."""

    runs: SpotRunModel
    age_trust: float
    migrate_patience: float
    cheaper_patience: float
    cheaper_margin: float
    short_outage: float
    prior_runs: float
    tail_evidence: float = 1.0

    def heavy_tailed(self, zone: ZoneMarket) -> bool:
        """Whether the ranking trusts a run of `zone` that has lasted to last (`SpotRunModel`),
        with `tail_evidence` standard errors of it: a zone wrongly read as heavy-tailed
        has its old run ranked `age_trust` times its age and pulls jobs across regions."""
        return self.runs.heavy_tailed(zone, self.tail_evidence)

    def pick(
        self, state: PolicyState, candidates: list[ZoneMarket], worth: float | None
    ) -> ZoneMarket:
        """The zone with the lowest expected cost per useful hour of its current run.

        `worth` is given with slack below the reserve (`end_worth`), None above it.
        With slack below the reserve every preemption costs a changeover of slack the
        endgame may need, so the run's end is priced at the on-demand hours one spot
        start fewer is expected to cost the rest of the job (`changeover_worth`, with
        later runs as long as the best one up now) and the run expected to last what the zone's
        runs of this age went on to last, but, where its runs are heavy-tailed, at
        least `age_trust` times its age (the few longer runs a zone has shown say
        little about one that has lasted long; a memoryless zone's age says nothing:
        with the floor on its runs too, synthetic zone sets at 0.95 were 6.8 / 12.1 /
        14.4 % above the optimum, 5.6 / 11.1 / 11.3 % without). Above the reserve, a
        run is expected to last at least its zone's mean run, and at least as long
        again as its age.
        """

        def cost_per_useful_hour(zone: ZoneMarket) -> float:
            if worth is None:
                return self._cost_per_useful_hour(state, zone, fresh=False)
            return self._scarce_cost(state, zone, False, worth)

        return min(candidates, key=cost_per_useful_hour)

    def _ranked_run(self, zone: ZoneMarket, fresh: bool) -> float:
        """Below the reserve: how long a run of `zone` is expected to last (`pick`); a
        `fresh` run (of a zone that is out now) its zone's mean run."""
        if fresh:
            return self.runs.expected_up_hours(zone)
        # Not by the hour: the runs ranked are of any age, and the hours after
        # an old run's start say nothing about now (with it, 9 zones at 0.95
        # were 9.5 % above the optimum instead of 7.8 %, 300 starts).
        expected = self.runs.outlook(zone, by_hour=False).residual_hours
        if self.heavy_tailed(zone):
            expected = max(expected, self.age_trust * zone.run_hours())
        return expected

    def _later_runs(self, state: PolicyState) -> float:
        """The run the job's later spot starts are expected to get: the longest ranked
        run of the zones up now (of all zones' mean runs when none is up).

        The longest, because the job takes that zone once slack is short enough for the
        length to matter; the mean of the zones' ranked runs made 13 alike zones at 0.95
        10.6 % above the optimum (4.1 % so). Optimistic where that zone is pricier than the ones the
        job takes meanwhile (bench/spot/README.md, "Pricing a run's end")."""
        up = [z for z in state.zones if z.available]
        if up:
            return max(self._ranked_run(z, fresh=False) for z in up)
        return max((self.runs.expected_up_hours(z) for z in state.zones), default=0.0)

    def end_worth(self, state: PolicyState) -> float:
        """Below the reserve: the on-demand hours the end of a spot run started now is
        expected to cost (`changeover_worth`), later runs as long as the best one up
        now. Read once per decision (`SlackReserve` hands it to the ranking and the
        waits below the reserve): it looks at every open zone's runs."""
        d = state.changeover_hours
        return changeover_worth(
            state.slack_hours,
            d,
            2 * d + step_margin(state),
            state.remaining_hours,
            self._later_runs(state),
        )

    def _scarce_cost(
        self, state: PolicyState, zone: ZoneMarket, fresh: bool, worth: float
    ) -> float:
        """Below the reserve: cost per useful hour with the end of the run priced at
        `worth` on-demand hours (`end_worth`) at on demand's premium over this zone's
        spot."""
        premium = max(on_demand_price(state, zone) - zone.spot_price, 0.0)
        expected = self._ranked_run(zone, fresh)
        return self._per_useful_hour(state, zone, expected, worth * premium)

    def _cost_per_useful_hour(self, state: PolicyState, zone: ZoneMarket, fresh: bool) -> float:
        """Above the reserve: a run lasts its zone's mean run (a fresh one), or, begun
        already, at least as long again as its age."""
        expected = self.runs.expected_up_hours(zone)
        if not fresh:
            expected = max(expected, zone.run_hours())
        return self._per_useful_hour(state, zone, expected, 0.0)

    @staticmethod
    def _per_useful_hour(
        state: PolicyState, zone: ZoneMarket, expected: float, forced: float
    ) -> float:
        d = state.changeover_hours
        run = min(expected, state.remaining_hours + d)
        useful = max(run - d, 0.1 * d)
        return (zone.spot_price * run + state.migration_cost_to(zone.region) + forced) / useful

    def wait_for_home(
        self, state: PolicyState, zone: ZoneMarket, spare: float, scarce: bool
    ) -> float | None:
        """Hours worth idling for the checkpoint's region to come back instead of moving.

        An outage there is waited out for `migrate_patience` changeovers from its start,
        if all of that fits in the `spare` slack over the reserve. With the slack `scarce`
        (under `spike_wait` reserves) the wait is taken only while the region is likely
        back within it: while at least `short_outage` of its zones' past outages that
        lasted as long ended within the patience, or, where the patience does not fit,
        within the spare slack, which is then what is waited. Idle slack there is slack
        the endgame may need, and a region whose outages of this age are the long ones is
        waited for in vain (synthetic zone sets at 0.8-0.9: 0.2-0.5 points closer to the
        optimum; bench/spot/README.md, "Several zones").

        A home zone whose spot is priced above on demand is out too, but a spike has no
        age the policy can see (it reads the price now; it is asked again at every price
        change): it is waited out for as long as the spare slack keeps room for
        `migrate_patience` changeovers after it, like an outage that has just begun.
        Moving instead pays egress and a changeover there, and both again to come back
        to the zone once its price is down (with slack to spare, a synthetic zone set
        whose cheapest zone spikes three times a day was 12 % above the optimum at job
        fraction 0.6 with moving, 7.8 % with waiting; bench/spot/README.md).
        """
        if state.migration_cost_to(zone.region) <= 0:
            return None
        home = [z for z in state.zones if z.region == state.checkpoint_region]
        if not home:
            return None
        patience = self.migrate_patience * state.changeover_hours
        if any(priced_out(state, z) for z in home):
            # Idle, the spare slack falls an hour per hour: look again when only the
            # patience is left of it (the answer then turns to moving).
            return spare - patience if spare > patience + EPS else None
        waited = min(z.run_hours() for z in home)
        wait = patience - waited
        if wait <= 0:
            return None
        out = [z for z in home if not z.available]
        if not scarce or len(out) < len(home):
            return wait if wait <= spare else None
        window = patience
        if wait > spare:
            # the patience does not fit: the spare slack, if the region is likely back in it
            if spare <= EPS:
                return None
            wait = window = spare
        chance, change = back_within(out, window, self.prior_runs)
        if chance < self.short_outage:
            return None
        if change is not None:
            # the chance falls as the outages age past lengths seen: ask again then
            wait = min(wait, max(change, EPS))
        return wait

    def stay_in_region(
        self, state: PolicyState, zone: ZoneMarket, open_zones: list[ZoneMarket], worth: float
    ) -> ZoneMarket | None:
        """Below the reserve: the checkpoint region's best open zone rather than `zone`, the
        best zone up elsewhere, unless the move pays back its egress a second time.

        The ranking spreads one egress over the run a move buys; but a job that moved is
        as likely to move back at its next preemption (the region it left is as likely to
        be the best one then), so a move is priced here at its egress and the one back.
        Only where `zone`'s runs are memoryless, ranked at their zone's mean run: a
        heavy-tailed zone's long run is worth what the ranking says (with heavy-tailed
        zones too, the 9 V100 zones at 0.95 went from 7.23 to 7.38 %, 100 starts;
        bench/spot/README.md).
        """
        egress = state.migration_cost_to(zone.region)
        if egress <= 0 or self.heavy_tailed(zone):
            return None
        home = [z for z in open_zones if z.region == state.checkpoint_region]
        if not home:
            return None
        best = min(home, key=lambda z: self._scarce_cost(state, z, False, worth))
        d = state.changeover_hours
        run = min(self.runs.outlook(zone, by_hour=False).residual_hours, state.remaining_hours + d)
        back = egress / max(run - d, 0.1 * d)  # the move back, per useful hour of the run
        away = self._scarce_cost(state, zone, False, worth) + back
        return best if self._scarce_cost(state, best, False, worth) <= away else None

    def wait_for_short_home_outage(
        self, state: PolicyState, zone: ZoneMarket, outage_patience: float, worth: float
    ) -> float | None:
        """Below the reserve: hours worth idling for the checkpoint's region, likely back
        within a changeover, instead of moving to `zone`, the best zone up.

        The test the outage wait of one zone uses (`short_outage_wait`): at least
        `short_outage` of its zones' past outages that lasted as long ended within one
        more changeover, up to an outage age of `outage_patience` changeovers. Moving pays
        egress and a changeover there; the wait costs the outage, and the changeover home
        is paid either way. Only where the region's zones are memoryless and their fresh
        run is priced per useful hour at most as `zone`'s run (as `pick` ranks them below
        the reserve): a heavy-tailed zone's fresh run is likely a short one, and is asked
        to prove itself before on demand is left for it (synthetic zone sets at 0.95:
        0.3-0.5 points closer to the optimum; on the V100 zones, where runs are
        heavy-tailed, waiting for them made 0.95 8.25 % against 7.69 %, 300 starts).
        The job waits only with room left after the wait for the changeover home and
        the safety net.
        """
        if state.migration_cost_to(zone.region) <= 0:
            return None
        home = [z for z in state.zones if z.region == state.checkpoint_region]
        if not home or any(z.available or self.heavy_tailed(z) for z in home):
            return None
        d = state.changeover_hours
        waited = min(z.run_hours() for z in home)
        if waited >= outage_patience * d - EPS:
            return None
        chance, change = back_within(home, d, self.prior_runs)
        if chance < self.short_outage:
            return None
        home_cost = min(self._scarce_cost(state, z, True, worth) for z in home)
        if home_cost > self._scarce_cost(state, zone, False, worth) + EPS:
            return None
        wait = min(d, outage_patience * d - waited)
        if change is not None:
            wait = min(wait, max(change, EPS))
        room = 3 * d + step_margin(state)
        return wait if state.slack_hours - wait >= room - EPS else None

    def wait_for_cheaper(
        self,
        state: PolicyState,
        zone: ZoneMarket,
        spare: float,
        allowed: Callable[[float], float],
    ) -> float | None:
        """Hours worth idling for a zone that is out now but cheaper than `zone`, the best up.

        Above the reserve slack costs no money, but a pricier zone taken now is ridden
        until it is preempted (a running zone is not left for a cheaper one). So an
        outage of a zone whose fresh run would cost less per useful hour is waited out
        idle while it is younger than `cheaper_patience` changeovers (taking the pricier
        zone now and coming back to the cheap one later would spend that much slack on
        the two changeovers anyway), or, where it is cheaper by more than
        `cheaper_margin`, while `allowed(age)`, the hours more an outage of that age may
        take of the slack over the reserve, is left: the share a single zone's outage
        gets before it is bridged on demand. Ample slack is worth less than riding the
        pricier zone until it is preempted (bench/spot/README.md, "Several zones").
        """
        if self.cheaper_patience <= 0:
            return None
        best = self._cost_per_useful_hour(state, zone, fresh=False)
        patience = self.cheaper_patience * state.changeover_hours
        wait: float | None = None
        for other in state.zones:
            if other.available or other.spot_price > on_demand_price(state, other):
                continue
            cost = self._cost_per_useful_hour(state, other, fresh=True)
            if cost >= best - EPS:
                continue
            left = patience - other.run_hours()
            # The share only for a zone seen up (one never seen up may be out for good)
            # and cheaper by a margin: idling for a zone a few per cent cheaper spent
            # slack that later outages of every zone needed (bench/spot/README.md).
            if other.settled_stats().fraction > 0 and cost < best * (1 - self.cheaper_margin):
                left = max(left, allowed(other.run_hours()))
            if EPS < left <= spare:
                wait = left if wait is None else max(wait, left)
        return wait

    @staticmethod
    def spiked_last_zone(state: PolicyState) -> ZoneMarket | None:
        """The zone the job last ran spot in, if a price spike priced it out."""
        if state.last_zone is None:
            return None
        last = state.zone_market(state.last_zone)
        return last if last is not None and priced_out(state, last) else None
