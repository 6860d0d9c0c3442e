"""skyd.optimizer.place over catalog columns: the same decision as `place_each`, in numpy.

Used when every alternative of a request is an `ExplainedRows` answer (a request no catalog
index narrows, like a CPU job's "any instance": ~10,000 candidates). Prices, preemption
rates, expected hours and costs, exclusions, the winner and the preference order are computed
as arrays; a `CandidateView` is only built for the rows someone looks at (`RowViews`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import numpy as np

from skyd.catalog.table import CODE, REASONS, CandidateTable, ExplainedRows, reason_of
from skyd.model import ExclusionReason
from skyd.optimizer.single import (
    CandidateView,
    HoursByAccelerator,
    MarketSignals,
    Objective,
    PlacementDecision,
    PlacementRequest,
    at_risk_note,
    never_finishes_note,
    over_max_price_note,
    spot_deadline_note,
    unrequested_note,
    why_chosen,
    why_nothing,
)

_NO_SPOT = CODE[ExclusionReason.NO_SPOT_MARKET]
_OVER_MAX = CODE[ExclusionReason.OVER_MAX_PRICE]
_DEADLINE = CODE[ExclusionReason.DEADLINE]
_NO_QUOTA = CODE[ExclusionReason.NO_QUOTA]
_UNREQUESTED = CODE[ExclusionReason.UNREQUESTED_ACCELERATOR]

# which note a row carries (set where place_each would set one)
_NOTE_NONE, _NOTE_NEVER, _NOTE_MAX, _NOTE_SPOT_DEADLINE, _NOTE_AT_RISK, _NOTE_UNREQUESTED = range(6)


def rows_of(request: PlacementRequest) -> CandidateTable | None:
    """The table every alternative was answered from, if they all were (else None)."""
    alternatives = request.alternatives
    if not alternatives or not all(isinstance(a, ExplainedRows) for a in alternatives):
        return None
    table = alternatives[0].table  # type: ignore[attr-defined]
    return table if all(a.table is table for a in alternatives) else None  # type: ignore[attr-defined]


def _rates(table: CandidateTable, signals: MarketSignals) -> np.ndarray[Any, Any]:
    """Preemption rate per table row: the most specific scope given wins, as in
    MarketSignals.preemption_rate (offer key, zone, region, cloud, default)."""
    rate = np.full(len(table), signals.default_preemptions_per_hour, np.float64)
    by_kind: list[list[tuple[str, float]]] = [[], [], [], []]
    for scope, value in signals.preemptions_per_hour.items():
        if scope in table.clouds:
            by_kind[0].append((scope, value))
        elif scope in table.regions:
            by_kind[1].append((scope, value))
        elif scope in table.zones:
            by_kind[2].append((scope, value))
        elif scope in table.offer_keys:
            by_kind[3].append((scope, value))
    columns = (table.cloud, table.region, table.zone, table.offer_id)
    indexes = (table.clouds, table.regions, table.zones, table.offer_keys)
    for kind, scopes in enumerate(by_kind):
        for scope, value in scopes:
            rate[columns[kind] == indexes[kind][scope]] = value
    return rate


def place_rows(
    request: PlacementRequest, signals: MarketSignals, table: CandidateTable
) -> PlacementDecision:
    alternatives: list[ExplainedRows] = list(request.alternatives)  # type: ignore[arg-type]
    rows = np.concatenate([a.rows for a in alternatives])
    codes = np.concatenate([a.codes for a in alternatives])
    alt = np.concatenate([np.full(len(a), i, np.int64) for i, a in enumerate(alternatives)])
    spot = table.spot[rows]
    price_column = table.price
    if signals.spot_price_micros:
        price_column = price_column.copy()
        for key, micros in signals.spot_price_micros.items():
            offer = table.offer_keys.get(key)
            if offer is not None and table.spot_row[offer] >= 0:
                price_column[table.spot_row[offer]] = micros
    price = price_column[rows]
    rate = np.where(spot, _rates(table, signals)[rows], 0.0)
    hours_for = HoursByAccelerator(request)
    per_name = np.asarray([hours_for(name) for name in table.accelerator_names], np.float64)
    base = per_name[table.accelerator_name[rows]]
    restart = request.restart_cost_hours
    lost = rate * restart
    never = spot & (lost >= 1.0)
    with np.errstate(divide="ignore"):
        hours = np.where(never, math.inf, base / np.where(never, 1.0, 1.0 - lost))
    nodes = request.num_nodes
    cost = np.where(never, 0.0, np.rint(price * hours * nodes)).astype(np.int64)
    egress = _egress(request, table, rows)
    if egress is not None:
        cost += egress
    note = np.where(never, _NOTE_NEVER, _NOTE_NONE)
    codes = np.where((codes == 0) & never, _NO_SPOT, codes)
    deadline = request.deadline_hours
    meets = np.ones(len(rows), np.bool_) if deadline is None else hours <= deadline
    max_price = request.max_hourly_price_micros
    if max_price is not None:
        over = (codes == 0) & (price > max_price)
        codes = np.where(over, _OVER_MAX, codes)
        note = np.where(over, _NOTE_MAX, note)
    if deadline is not None:
        late = (codes == 0) & ~meets
        codes = np.where(late & spot, _DEADLINE, codes)
        note = np.where(late, np.where(spot, _NOTE_SPOT_DEADLINE, _NOTE_AT_RISK), note)
    bars = _exclude_unrequested(request, table, rows, alt, codes, cost, meets, note)
    views = RowViews(table, rows, alt, codes, price, hours, cost, rate, meets, note, bars)
    views.egress = egress
    views.restart, views.deadline, views.max_price = restart, deadline, max_price
    feasible = np.flatnonzero(codes == 0)
    if len(feasible) == 0:
        return PlacementDecision(
            None, views, _why_nothing(request, views), None, request.ordered, ()
        )
    region_rank = _region_ranks(table, signals)[table.region[rows]]
    pool = feasible
    if request.ordered:
        pool = feasible[alt[feasible] == alt[feasible].min()]
    on_time = pool[meets[pool]]
    objective: Objective = request.objective if len(on_time) else "time"
    candidates = on_time if len(on_time) else pool
    keys = _keys(objective, cost, hours, rate, region_rank, table.name_rank[rows], alt)
    best = int(candidates[np.lexsort(tuple(k[candidates] for k in keys))[0]])
    views.chosen = best
    winner = views[best]
    reason = why_chosen(request, winner, len(pool), objective, bool(len(on_time)))
    by_cost = _keys(request.objective, cost, hours, rate, region_rank, table.name_rank[rows], alt)
    preferred = feasible[np.lexsort(tuple(k[feasible] for k in by_cost))]
    placement = winner.placement(reason)
    return PlacementDecision(
        placement, views, reason, winner.alternative, request.ordered, tuple(preferred.tolist())
    )


def _egress(request: PlacementRequest, table: CandidateTable, rows: Any) -> Any:
    """Egress cost per row: one constant per (cloud, region), looked up per region of the
    table (a few hundred) and spread over the rows by their region code."""
    data = request.data
    if not data:
        return None
    per_region = np.fromiter(
        (data.cost_micros(*scope.split("/", 1)) for scope in table.region_scopes),
        np.int64,
        len(table.region_scopes),
    )
    return per_region[table.region[rows]]


def _keys(objective: Objective, *columns: Any) -> tuple[Any, ...]:
    """np.lexsort keys (last = primary) for rank_key's order."""
    cost, hours, rate, region_rank, name_rank, alt = columns
    first, second = (hours, cost) if objective == "time" else (cost, hours)
    return (alt, name_rank, region_rank, rate, second, first)


def _region_ranks(table: CandidateTable, signals: MarketSignals) -> np.ndarray[Any, Any]:
    ranks = signals.region_rank
    default = signals.default_region_rank
    return np.asarray([ranks.get(s, default) for s in table.region_scopes], np.int64)


def _exclude_unrequested(
    request: PlacementRequest,
    table: CandidateTable,
    rows: Any,
    alt: Any,
    codes: Any,
    cost: Any,
    meets: Any,
    note: Any,
) -> dict[int, int]:
    """place_each's rule for jobs that asked for no accelerator, on columns (in place)."""
    bars: dict[int, int] = {}
    if not request.filters:
        return bars
    accelerated = table.accelerator_count[rows] > 0
    for index, f in enumerate(request.filters):
        if f.accelerators:
            continue
        mine = alt == index
        usable = (codes == 0) | ((codes == _NO_QUOTA) if request.deadline_hours is None else False)
        fits = mine & ~accelerated & usable & meets
        if not fits.any():
            continue
        bar = int(cost[fits].min())
        bars[index] = bar
        hit = mine & accelerated & (codes == 0) & (cost >= bar)
        codes[hit] = _UNREQUESTED
        note[hit] = _NOTE_UNREQUESTED
    return bars


def _why_nothing(request: PlacementRequest, views: RowViews) -> str:
    counts = []
    for index in range(len(request.alternatives)):
        found = np.bincount(views.codes[views.alt == index], minlength=len(REASONS) + 1)
        counts.append(
            Counter({reason_of(code): int(n) for code, n in enumerate(found.tolist()) if n})
        )
    waiting_for = None
    busy_free = np.flatnonzero((views.codes == _NO_QUOTA) & (views.price == 0))
    if len(busy_free) and (views.codes == _UNREQUESTED).any():
        waiting_for = views[int(busy_free[0])].offer.cloud
    return why_nothing(request, counts, waiting_for)


class RowViews(Sequence[CandidateView]):
    """A decision's candidates as columns; a CandidateView is built when one is read."""

    def __init__(self, table: CandidateTable, *columns: Any) -> None:
        self.table = table
        (
            self.rows,
            self.alt,
            self.codes,
            self.price,
            self.hours,
            self.cost,
            self.rate,
            self.meets,
            self.note,
            self.bars,
        ) = columns
        self.chosen: int | None = None
        self.restart = 0.0
        self.deadline: float | None = None
        self.max_price: int | None = None
        self.egress: Any = None  # egress cost per row (None: the job moves no data)
        self._built: dict[int, CandidateView] = {}

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> CandidateView: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[CandidateView]: ...

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        view = self._built.get(index)
        if view is None:
            view = self._built[index] = self._build(index)
        return view

    def __iter__(self) -> Iterator[CandidateView]:
        return (self[i] for i in range(len(self)))

    def _build(self, i: int) -> CandidateView:
        candidate = self.table.candidates[int(self.rows[i])]
        price, hours, rate = int(self.price[i]), float(self.hours[i]), float(self.rate[i])
        kind = int(self.note[i])
        note = ""
        if kind == _NOTE_NEVER:
            note = never_finishes_note(rate, self.restart)
        elif kind == _NOTE_MAX and self.max_price is not None:
            note = over_max_price_note(price, self.max_price)
        elif kind == _NOTE_SPOT_DEADLINE and self.deadline is not None:
            note = spot_deadline_note(hours, self.deadline)
        elif kind == _NOTE_AT_RISK and self.deadline is not None:
            note = at_risk_note(hours, self.deadline)
        elif kind == _NOTE_UNREQUESTED:
            note = unrequested_note(candidate.offer, self.bars[int(self.alt[i])])
        return CandidateView(
            candidate,
            int(self.alt[i]),
            price,
            hours,
            int(self.cost[i]),
            rate,
            reason_of(int(self.codes[i])),
            note,
            bool(self.meets[i]),
            i == self.chosen,
            0 if self.egress is None else int(self.egress[i]),
        )

    def ranked(self, rank_of: Mapping[ExclusionReason, int], limit: int) -> list[CandidateView]:
        """The first `limit` views by (chosen first, rank of the exclusion, expected cost).

        Sorted on the columns, so a request over the whole catalog builds only the views it
        shows; feasible rows rank -1, an exclusion missing from `rank_of` ranks 0. Stable,
        like `sorted` over the views in row order.
        """
        if len(self) == 0:
            return []
        by_code = np.array([-1, *(rank_of.get(reason, 0) for reason in REASONS)], np.int64)
        rank = by_code[np.asarray(self.codes, np.int64)]
        not_chosen = np.ones(len(self), np.int8)
        if self.chosen is not None:
            not_chosen[self.chosen] = 0
        order = np.lexsort((np.asarray(self.cost), rank, not_chosen))  # last key sorts first
        return [self[int(i)] for i in order[:limit]]

    def pruned(
        self, preferred: Sequence[int], per_group: int, max_options: int
    ) -> list[CandidateView]:
        """The first `per_group` of `preferred` per (cloud, region, market, accelerator),
        at most `max_options` (what plan.prune_options keeps, without building the rest)."""
        order = np.asarray(preferred, np.int64)
        if len(order) == 0:
            return []
        table = self.table
        rows = self.rows[order]
        names = len(table.accelerator_names)
        group = (table.region[rows] * 2 + table.spot[rows]) * names + table.accelerator_name[rows]
        by_group = np.argsort(group, kind="stable")
        sorted_group = group[by_group]
        starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
        sizes = np.diff(np.r_[starts, len(sorted_group)])
        position = np.empty(len(order), np.int64)
        position[by_group] = np.arange(len(order)) - np.repeat(starts, sizes)
        kept = np.flatnonzero(position < per_group)[:max_options]
        return [self[int(i)] for i in order[kept]]
