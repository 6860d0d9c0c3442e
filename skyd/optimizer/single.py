"""Placement of one job: expected cost and time of every candidate offering, and the choice.

Expected hours: the spec's per-accelerator estimate, else its estimated runtime, else
DEFAULT_EXPECTED_HOURS. On spot, with preemptions at `rate` per hour each costing
`restart_cost_hours` (lost progress + relaunch + setup), only 1 - rate * restart of the wall
time is progress, so hours / (1 - rate * restart) are expected (to first order the
hours + rate * hours * restart of the plain model); at rate * restart >= 1 spot is excluded.
Expected cost = live hourly price x expected hours x nodes, plus the egress of the job's data
to (and from) the candidate's cloud and region (skyd.optimizer.egress): a per-region constant.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from skyd.model import Candidate, ExclusionReason, Offer, OfferFilter, Placement
from skyd.optimizer.describe import describe_filter, dollars
from skyd.optimizer.egress import DataFootprint
from skyd.optimizer.spot_risk import DEFAULT_PREEMPTIONS_PER_HOUR

# When a spec gives no estimated runtime we price one hour: it ranks offerings by $/h, which is
# what SkyPilot's optimizer does, and keeps expected costs readable.
DEFAULT_EXPECTED_HOURS = 1.0

# Per preemption: reload the last checkpoint, launch a new instance and run setup again.
DEFAULT_RESTART_COST_HOURS = 0.25

Objective = Literal["cost", "time"]


@dataclass(frozen=True, slots=True)
class MarketSignals:
    """Live overrides of catalog prices and the spot preemption risk per market.

    `preemptions_per_hour` is looked up by offer key, then zone scope ("cloud/region/zone"),
    region scope ("cloud/region") and cloud; `default_preemptions_per_hour` applies otherwise
    (by default the riskiest AWS spot-advisor bucket, see skyd.optimizer.spot_risk).
    """

    spot_price_micros: Mapping[str, int] = field(default_factory=dict)
    preemptions_per_hour: Mapping[str, float] = field(default_factory=dict)
    default_preemptions_per_hour: float = DEFAULT_PREEMPTIONS_PER_HOUR
    # Preference among equal candidates, by "cloud/region" (lower first; see
    # skyd.optimizer.preference): the lab's home regions before far-away ones.
    region_rank: Mapping[str, int] = field(default_factory=dict)
    default_region_rank: int = 0

    def preemption_rate(self, offer: Offer) -> float:
        return self.preemption_rate_at(offer.cloud, offer.region, offer.zone, offer.instance_type)

    def preemption_rate_at(self, cloud: str, region: str, zone: str, instance_type: str) -> float:
        """The rate of spot `instance_type` in (cloud, region, zone), narrowest scope first."""
        rates = self.preemptions_per_hour
        if rates:
            for scope in (
                f"{cloud}/{region}/{zone}/{instance_type}",
                f"{cloud}/{region}/{zone}",
                f"{cloud}/{region}",
                cloud,
            ):
                rate = rates.get(scope)
                if rate is not None:
                    return rate
        return self.default_preemptions_per_hour


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    """One job as the optimizer sees it: its candidates per alternative, and its estimates.

    `alternatives` holds, per `any_of`/`ordered` alternative of the spec, the catalog's
    `explain()` answer. `filters` (optional, same order) only serves to word "why not placed".
    `deadline_hours` is the time left until the deadline.
    """

    alternatives: Sequence[Sequence[tuple[Candidate, ExclusionReason | None]]]
    ordered: bool = False
    objective: Objective = "cost"
    estimated_hours: float | None = None
    per_accelerator_hours: Mapping[str, float] = field(default_factory=dict)
    restart_cost_hours: float = DEFAULT_RESTART_COST_HOURS
    deadline_hours: float | None = None
    num_nodes: int = 1
    max_hourly_price_micros: int | None = None
    filters: Sequence[OfferFilter] = ()
    # the job's buckets and their sizes: egress is added to each candidate's expected cost
    data: DataFootprint | None = None

    def __post_init__(self) -> None:
        if self.objective not in ("cost", "time"):
            raise ValueError(
                f"PlacementRequest.objective: {self.objective!r} is not known; use 'cost' or 'time'"
            )
        if self.num_nodes < 1:
            raise ValueError(
                f"PlacementRequest.num_nodes: {self.num_nodes!r} is too small; use an integer >= 1"
            )
        if self.estimated_hours is not None and not self.estimated_hours > 0:
            raise ValueError(
                f"PlacementRequest.estimated_hours: {self.estimated_hours!r} must be > 0"
                " (or None for the default of 1 h)"
            )
        for name, hours in self.per_accelerator_hours.items():
            if not hours > 0:
                raise ValueError(
                    f"PlacementRequest.per_accelerator_hours[{name!r}]: {hours!r} must be > 0"
                )
        if not self.restart_cost_hours >= 0:
            raise ValueError(
                f"PlacementRequest.restart_cost_hours: {self.restart_cost_hours!r} must be >= 0"
            )
        if self.filters and len(self.filters) != len(self.alternatives):
            raise ValueError(
                f"PlacementRequest.filters: {len(self.filters)} filters for "
                f"{len(self.alternatives)} alternatives; give one per alternative or none"
            )


@dataclass(slots=True)
class CandidateView:
    """One candidate as `skyd optimize` shows it: prices, expectations and the verdict.

    Read-only by convention. Not frozen: a frozen dataclass costs ~4x more to build, and a
    request over the full catalogs builds thousands of these.
    """

    candidate: Candidate
    alternative: int
    hourly_price_micros: int
    expected_hours: float  # includes the expected preemption overhead on spot
    expected_cost_micros: int  # hourly price x expected hours x nodes, plus egress
    preemptions_per_hour: float  # 0 on-demand
    excluded: ExclusionReason | None
    note: str = ""  # why excluded, or a warning (deadline at risk)
    meets_deadline: bool = True
    chosen: bool = False
    egress_cost_micros: int = 0  # moving the job's data here (part of expected_cost_micros)

    @property
    def compute_cost_micros(self) -> int:
        return self.expected_cost_micros - self.egress_cost_micros

    @property
    def offer(self) -> Offer:
        return self.candidate.offer

    @property
    def spot(self) -> bool:
        return self.candidate.spot

    def placement(self, reason: str) -> Placement:
        """This candidate as the decision's chosen placement, for `reason`."""
        return Placement(
            offer=self.candidate.offer,
            spot=self.spot,
            hourly_price_micros=self.hourly_price_micros,
            expected_cost_micros=self.expected_cost_micros,
            expected_hours=self.expected_hours,
            reason=reason,
            egress_cost_micros=self.egress_cost_micros,
        )


@dataclass(frozen=True, slots=True)
class PlacementDecision:
    chosen: Placement | None
    candidates: Sequence[CandidateView]
    reason: str  # why this one, or which constraint left nothing
    alternative: int | None = None  # index of the winning alternative
    ordered: bool = False  # the request's alternatives are in preference order
    preferred: tuple[int, ...] | None = None  # feasible candidates' indices, best first

    @property
    def chosen_view(self) -> CandidateView | None:
        if self.chosen is not None and self.preferred is not None:
            return next(self.candidates[i] for i in self.preferred if self.candidates[i].chosen)
        return next((view for view in self.candidates if view.chosen), None)

    @property
    def feasible(self) -> list[CandidateView]:
        """The feasible candidates, best first (cheapest, then preferred region)."""
        if self.preferred is not None:
            return [self.candidates[i] for i in self.preferred]
        return [view for view in self.candidates if view.excluded is None]


class HoursByAccelerator:
    """Runtime estimate per accelerator name: exact key, then case-insensitive, then default."""

    def __init__(self, request: PlacementRequest) -> None:
        self._exact = dict(request.per_accelerator_hours)
        self._folded = {name.casefold(): hours for name, hours in self._exact.items()}
        self._default = (
            request.estimated_hours
            if request.estimated_hours is not None
            else DEFAULT_EXPECTED_HOURS
        )
        self._memo: dict[str, float] = {}

    def __call__(self, accelerator: str) -> float:
        hours = self._memo.get(accelerator)
        if hours is None:
            hours = self._exact.get(accelerator)
            if hours is None:
                hours = self._folded.get(accelerator.casefold(), self._default)
            self._memo[accelerator] = hours
        return hours


TieBreak = tuple[float, int, str, str, str, str, bool, int]
RankKey = tuple[float, float, TieBreak]


def _tiebreak_for(signals: MarketSignals) -> Callable[[CandidateView], TieBreak]:
    """Equal expected cost and time: the less risky market (lower preemption rate), then the
    preferred region (home regions first), and only then names, for a stable order."""
    ranks = signals.region_rank
    default = signals.default_region_rank

    def tiebreak(view: CandidateView) -> TieBreak:
        offer = view.candidate.offer
        rank = ranks.get(f"{offer.cloud}/{offer.region}", default) if ranks else default
        return (
            view.preemptions_per_hour,
            rank,
            offer.cloud,
            offer.region,
            offer.zone,
            offer.instance_type,
            view.spot,
            view.alternative,
        )

    return tiebreak


def rank_key(objective: Objective, signals: MarketSignals) -> Callable[[CandidateView], RankKey]:
    tiebreak = _tiebreak_for(signals)
    if objective == "time":
        return lambda v: (v.expected_hours, v.expected_cost_micros, tiebreak(v))
    return lambda v: (v.expected_cost_micros, v.expected_hours, tiebreak(v))


def evaluate(request: PlacementRequest, signals: MarketSignals) -> list[CandidateView]:
    """Every candidate of every alternative with its live price, expectations and verdict."""
    hours_for = HoursByAccelerator(request)
    nodes = request.num_nodes
    restart = request.restart_cost_hours
    deadline = request.deadline_hours
    max_price = request.max_hourly_price_micros
    live_spot = signals.spot_price_micros
    scoped_rates = bool(signals.preemptions_per_hour)
    default_rate = signals.default_preemptions_per_hour
    data = request.data or None
    views: list[CandidateView] = []
    append = views.append
    for index, alternative in enumerate(request.alternatives):
        for candidate, reason in alternative:
            offer = candidate.offer
            price = candidate.hourly_price_micros
            base_hours = hours_for(offer.accelerator_name)
            note = ""
            if candidate.spot:
                if live_spot:
                    price = live_spot.get(offer.key, price)
                rate = signals.preemption_rate(offer) if scoped_rates else default_rate
                # Each preemption costs `restart` hours, and preemptions keep coming while the
                # job restarts: only 1 - rate * restart of the wall time is progress.
                lost_share = rate * restart
                if lost_share < 1.0:
                    hours = base_hours / (1.0 - lost_share)
                else:
                    hours = math.inf
                    reason = reason or ExclusionReason.NO_SPOT_MARKET
                    note = never_finishes_note(rate, restart)
            else:
                rate = 0.0
                hours = base_hours
            cost = round(price * hours * nodes) if hours != math.inf else 0
            egress = data.cost_micros(offer.cloud, offer.region) if data is not None else 0
            meets_deadline = deadline is None or hours <= deadline
            if reason is None:
                if max_price is not None and price > max_price:
                    reason = ExclusionReason.OVER_MAX_PRICE
                    note = over_max_price_note(price, max_price)
                elif not meets_deadline:
                    assert deadline is not None
                    if candidate.spot:
                        reason = ExclusionReason.DEADLINE
                        note = spot_deadline_note(hours, deadline)
                    else:
                        note = at_risk_note(hours, deadline)
            append(
                CandidateView(
                    candidate,
                    index,
                    price,
                    hours,
                    cost + egress,
                    rate,
                    reason,
                    note,
                    meets_deadline,
                    False,
                    egress,
                )
            )
    return views


def place_each(request: PlacementRequest, signals: MarketSignals) -> PlacementDecision:
    """skyd.optimizer.place, one candidate at a time (any request)."""
    views = evaluate(request, signals)
    _exclude_unrequested_accelerators(request, views)
    feasible = [i for i, view in enumerate(views) if view.excluded is None]
    if not feasible:
        return PlacementDecision(
            None, views, _why_nothing(request, views), None, request.ordered, ()
        )
    pool = feasible
    if request.ordered:
        first = min(views[i].alternative for i in feasible)
        pool = [i for i in feasible if views[i].alternative == first]
    on_time = [i for i in pool if views[i].meets_deadline]
    objective: Objective = request.objective if on_time else "time"
    key = rank_key(objective, signals)
    best = min(on_time or pool, key=lambda i: key(views[i]))
    winner = views[best]
    reason = why_chosen(request, winner, len(pool), objective, bool(on_time))
    views[best] = replace(winner, chosen=True)
    # feasible candidates in preference order (cost, then time, then tie-breaks): the global
    # plan's options keep this order, so its ties go the way a single placement's do
    by_cost = rank_key(request.objective, signals)
    feasible.sort(key=lambda i: by_cost(views[i]))
    placement = winner.placement(reason)
    return PlacementDecision(
        placement, views, reason, winner.alternative, request.ordered, tuple(feasible)
    )


def _exclude_unrequested_accelerators(
    request: PlacementRequest, views: list[CandidateView]
) -> None:
    """A job that asked for no accelerator does not take an instance with one when an
    instance without one fits for no more (or is free but busy and the job has no deadline,
    so it can wait for it): a CPU job on a V100 pays for, and blocks, a GPU it cannot use."""
    if not request.filters:
        return  # which alternatives asked for accelerators is not known
    bar: dict[int, int] = {}  # alternative -> expected cost of its cheapest accelerator-free fit
    for view in views:
        alternative = view.alternative
        if request.filters[alternative].accelerators or view.offer.accelerator_count:
            continue
        usable = view.excluded is None or (
            view.excluded is ExclusionReason.NO_QUOTA and request.deadline_hours is None
        )
        if usable and view.meets_deadline:
            cost = view.expected_cost_micros
            if cost < bar.get(alternative, cost + 1):
                bar[alternative] = cost
    if not bar:
        return
    for view in views:
        limit = bar.get(view.alternative)
        if (
            limit is not None
            and view.excluded is None
            and view.offer.accelerator_count
            and view.expected_cost_micros >= limit
        ):
            view.excluded = ExclusionReason.UNREQUESTED_ACCELERATOR
            view.note = unrequested_note(view.offer, limit)


def why_chosen(
    request: PlacementRequest,
    winner: CandidateView,
    pool_size: int,
    objective: Objective,
    on_time: bool,
) -> str:
    market = "spot" if winner.spot else "on-demand"
    basis = "lowest expected cost" if objective == "cost" else "shortest expected time"
    text = (
        f"{basis} among {pool_size} feasible candidate(s): {market} "
        f"{dollars(winner.hourly_price_micros)}/h, {winner.expected_hours:.2f} h expected, "
        f"{dollars(winner.expected_cost_micros)} expected"
    )
    if winner.egress_cost_micros:
        text += (
            f" ({dollars(winner.compute_cost_micros)} compute +"
            f" {dollars(winner.egress_cost_micros)} data egress)"
        )
    if len(request.alternatives) > 1:
        mode = "ordered" if request.ordered else "any_of"
        text += f" (alternative {winner.alternative + 1} of {len(request.alternatives)}, {mode})"
    if not on_time:
        text += "; no candidate is expected to meet the deadline, so the fastest was chosen"
    return text


def _what(request: PlacementRequest, alternative: int) -> str:
    if request.filters:
        return describe_filter(request.filters[alternative])
    return f"alternative {alternative + 1}"


def _why_nothing(request: PlacementRequest, views: list[CandidateView]) -> str:
    busy_free = next(
        (v for v in views if v.excluded is ExclusionReason.NO_QUOTA and v.hourly_price_micros == 0),
        None,
    )
    unrequested = any(v.excluded is ExclusionReason.UNREQUESTED_ACCELERATOR for v in views)
    counts = [Counter[ExclusionReason | None]() for _ in request.alternatives]
    for view in views:
        counts[view.alternative][view.excluded] += 1
    return why_nothing(
        request, counts, busy_free.offer.cloud if busy_free and unrequested else None
    )


def why_nothing(
    request: PlacementRequest,
    counts: Sequence[Counter[ExclusionReason | None]],
    waiting_for: str | None,
) -> str:
    """Why no candidate is feasible: per alternative, how many were excluded for what;
    `waiting_for` names the free but busy capacity a CPU job waits for, if that is why."""
    if not request.alternatives:
        return "no alternative was given to place"
    clauses: list[str] = []
    if waiting_for is not None:
        clauses.append(
            f"waiting for free capacity on {waiting_for} (busy now) rather than"
            " paying for an accelerator the job did not ask for"
        )
    for index in range(len(request.alternatives)):
        reasons = counts[index]
        if not reasons:
            clauses.append(f"no offering with {_what(request, index)}")
            continue
        detail = ", ".join(
            f"{count} {reason}" for reason, count in sorted(reasons.items(), key=_by_count)
        )
        clauses.append(f"no feasible offering with {_what(request, index)} ({detail})")
    return "; ".join(clauses)


def _by_count(item: tuple[ExclusionReason | None, int]) -> tuple[int, str]:
    reason, count = item
    return (-count, str(reason))


def never_finishes_note(rate: float, restart: float) -> str:
    return (
        f"preempted {rate:g}/h, faster than a {restart:g} h restart completes:"
        " the job would never finish on spot here"
    )


def over_max_price_note(price: int, max_price: int) -> str:
    return f"live price {dollars(price)}/h is over the maximum {dollars(max_price)}/h"


def spot_deadline_note(hours: float, deadline: float) -> str:
    return (
        f"expected {hours:.2f} h with preemptions exceeds the "
        f"{deadline:.2f} h left before the deadline"
    )


def at_risk_note(hours: float, deadline: float) -> str:
    return f"deadline at risk: expected {hours:.2f} h, {deadline:.2f} h left"


def unrequested_note(offer: Offer, limit: int) -> str:
    return (
        f"has {offer.accelerator_count}×{offer.accelerator_name} the job did"
        f" not ask for; an instance without accelerators fits for {dollars(limit)}"
    )
