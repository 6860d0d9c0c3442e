"""Every candidate of a catalog as columns (numpy), for queries no index narrows.

A request that names no accelerator ("any instance", a CPU job) matches most of the catalog:
~10,000 (offer, market) pairs. Checking them one by one in Python costs tens of milliseconds
per placement; here the columns are built once per catalog and any query (but a zone pin,
whose AWS AZ-name matching stays in skyd.catalog.matching) is a handful of vectorized
comparisons. The answer, `ExplainedRows`, reads
like the list `Catalog.explain()` returns and carries its columns, so the optimizer can rank
it the same way (skyd.optimizer.vectorized).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from skyd.catalog.matching import CompiledFilter, candidate_order, markets
from skyd.catalog.network_tier import best_network
from skyd.model import POOL_CLOUDS, Candidate, ExclusionReason, Offer

# code 0 = feasible; code i = REASONS[i - 1]
REASONS: tuple[ExclusionReason, ...] = tuple(ExclusionReason)
CODE = {reason: i + 1 for i, reason in enumerate(REASONS)}

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


def reason_of(code: int) -> ExclusionReason | None:
    return None if code == 0 else REASONS[code - 1]


class CandidateTable:
    """All (offer, market) pairs of a catalog, in `candidate_order`, as parallel columns."""

    def __init__(self, offers: Sequence[Offer], country_of: Callable[[str, str], str | None]):
        pairs = [
            Candidate(offer, spot, price)
            for offer in offers
            for spot, price, _ in markets(offer, None)
        ]
        pairs.sort(key=candidate_order)
        self.candidates: tuple[Candidate, ...] = tuple(pairs)
        self._faster_network: BoolArray | None = None
        n = len(pairs)
        self.clouds: dict[str, int] = {}
        self.regions: dict[str, int] = {}  # "cloud/region"
        self.zones: dict[str, int] = {}  # "cloud/region/zone"
        self.offer_keys: dict[str, int] = {}
        self.instance_types: dict[str, int] = {}
        self.accelerator_names: dict[str, int] = {"": 0}
        self.region_scopes: list[str] = []
        countries: dict[str, int] = {}
        price = np.empty(n, np.int64)
        spot = np.empty(n, np.bool_)
        other_market = np.empty(n, np.bool_)
        vcpus = np.empty(n, np.float64)
        memory = np.empty(n, np.float64)
        accelerators = np.empty(n, np.int64)
        cloud = np.empty(n, np.int64)
        region = np.empty(n, np.int64)
        zone = np.empty(n, np.int64)
        offer_id = np.empty(n, np.int64)
        acc_name = np.empty(n, np.int64)
        itype = np.empty(n, np.int64)
        country = np.empty(n, np.int64)
        region_country: dict[str, int] = {}
        for i, c in enumerate(pairs):
            o = c.offer
            price[i] = c.hourly_price_micros
            spot[i] = c.spot
            other_market[i] = (o.price_micros if c.spot else o.spot_price_micros) is not None
            vcpus[i] = o.vcpus
            memory[i] = o.memory_gib
            accelerators[i] = o.accelerator_count
            cloud[i] = self.clouds.setdefault(o.cloud, len(self.clouds))
            scope = f"{o.cloud}/{o.region}"
            r = self.regions.get(scope)
            if r is None:
                r = self.regions[scope] = len(self.regions)
                self.region_scopes.append(scope)
                code = country_of(o.cloud, o.region) or ""
                region_country[scope] = countries.setdefault(code, len(countries))
            region[i] = r
            zone[i] = self.zones.setdefault(f"{scope}/{o.zone}", len(self.zones))
            offer_id[i] = self.offer_keys.setdefault(o.key, len(self.offer_keys))
            acc_name[i] = self.accelerator_names.setdefault(
                o.accelerator_name, len(self.accelerator_names)
            )
            country[i] = region_country[scope]
            itype[i] = self.instance_types.setdefault(o.instance_type, len(self.instance_types))
        self.countries = countries
        self.price, self.spot, self.other_market = price, spot, other_market
        self.vcpus, self.memory, self.accelerator_count = vcpus, memory, accelerators
        self.cloud, self.region, self.zone, self.offer_id = cloud, region, zone, offer_id
        self.accelerator_name, self.country, self.instance_type = acc_name, country, itype
        # rank of (cloud, region, zone, instance type, spot): the last tie-break, by name
        order = sorted(
            range(n),
            key=lambda i: (
                pairs[i].offer.cloud,
                pairs[i].offer.region,
                pairs[i].offer.zone,
                pairs[i].offer.instance_type,
                pairs[i].spot,
            ),
        )
        self.name_rank = np.empty(n, np.int64)
        self.name_rank[np.asarray(order, np.int64)] = np.arange(n, dtype=np.int64)
        # the spot row of each offer (-1: none), for live spot prices
        self.spot_row = np.full(len(self.offer_keys), -1, np.int64)
        rows = np.arange(n, dtype=np.int64)
        self.spot_row[offer_id[spot]] = rows[spot]

    def __len__(self) -> int:
        return len(self.candidates)

    def scope_mask(self, scopes: frozenset[str] | Sequence[str]) -> BoolArray:
        """Rows in any of `scopes`: cloud, cloud/region, cloud/region/zone, offer key, or a
        candidate key (`…/spot`, `…/ondemand`)."""
        mask = np.zeros(len(self), np.bool_)
        for scope in scopes:
            if scope in self.clouds:
                mask |= self.cloud == self.clouds[scope]
            elif scope in self.regions:
                mask |= self.region == self.regions[scope]
            elif scope in self.zones:
                mask |= self.zone == self.zones[scope]
            elif scope in self.offer_keys:
                mask |= self.offer_id == self.offer_keys[scope]
            else:
                key, _, market = scope.rpartition("/")
                if market in ("spot", "ondemand") and key in self.offer_keys:
                    mask |= (self.offer_id == self.offer_keys[key]) & (
                        self.spot == (market == "spot")
                    )
        return mask

    def faster_network(self) -> BoolArray:
        """Rows skyd can give a faster network (`network_tier: best`), worked out once."""
        if self._faster_network is None:
            verdicts: dict[int, bool] = {}
            for candidate in self.candidates:
                offer = candidate.offer
                if id(offer) not in verdicts:
                    verdicts[id(offer)] = best_network(offer) is not None
            self._faster_network = np.fromiter(
                (verdicts[id(c.offer)] for c in self.candidates), np.bool_, len(self.candidates)
            )
        return self._faster_network

    def explain(self, compiled: CompiledFilter) -> ExplainedRows:
        """What `Catalog.explain` answers for a filter without a zone pin: every candidate
        with the requested accelerators and instance type (all of them when none is asked
        for), each with its first exclusion reason, feasible first."""
        f = compiled.source
        n = len(self)
        code = np.zeros(n, np.int64)
        relevant = np.ones(n, np.bool_)
        if compiled.accelerators:
            relevant = np.zeros(n, np.bool_)
            for name, count in compiled.accelerators:
                index = self.accelerator_names.get(name)
                if index is not None and name:
                    relevant |= (self.accelerator_name == index) & (self.accelerator_count == count)
        if f.instance_type is not None:
            relevant &= self.instance_type == self.instance_types.get(f.instance_type, -1)

        def exclude(mask: BoolArray, reason: ExclusionReason) -> None:
            code[(code == 0) & mask] = CODE[reason]

        if compiled.cloud is not None:
            exclude(
                self.cloud != self.clouds.get(compiled.cloud, -1), ExclusionReason.PINNED_ELSEWHERE
            )
        if f.region is not None:
            wanted = self.region_scopes
            allowed = np.asarray([s.split("/", 1)[1] == f.region for s in wanted], np.bool_)
            exclude(~allowed[self.region], ExclusionReason.PINNED_ELSEWHERE)
        pool = np.isin(self.cloud, [self.clouds[c] for c in POOL_CLOUDS if c in self.clouds])
        for amount, column in ((f.cpus, self.vcpus), (f.memory_gib, self.memory)):
            if amount is not None:
                # a capacity pool's node fits any ask up to its size (Amount.admits)
                big_enough = column >= amount.value
                fits = (
                    big_enough if amount.or_more else big_enough & (pool | (column == amount.value))
                )
                exclude(~fits, ExclusionReason.RESOURCES_TOO_SMALL)
        if compiled.countries:
            allowed = np.zeros(len(self.countries), np.bool_)
            for name, index in self.countries.items():
                allowed[index] = name in compiled.countries and name != ""
            exclude(~allowed[self.country], ExclusionReason.COUNTRY_NOT_ALLOWED)
        if f.faster_network:
            exclude(~self.faster_network(), ExclusionReason.NO_FASTER_NETWORK)
        keep = np.ones(n, np.bool_)
        if f.spot is True:
            # on-demand rows show offers that have no spot market at all
            keep = self.spot | ~self.other_market
            exclude(~self.spot, ExclusionReason.NO_SPOT_MARKET)
        elif f.spot is False:
            keep = ~self.spot | ~self.other_market
            exclude(self.spot, ExclusionReason.NOT_PRICED)
        if f.max_hourly_price_micros is not None:
            exclude(self.price > f.max_hourly_price_micros, ExclusionReason.OVER_MAX_PRICE)
        if f.blocked:
            exclude(self.scope_mask(f.blocked), ExclusionReason.BLOCKED)
        rows = np.flatnonzero(keep & relevant)
        # feasible first, then catalog order (stable)
        rows = rows[np.argsort(code[rows] != 0, kind="stable")]
        return ExplainedRows(self, rows, code[rows])


@dataclass(frozen=True, slots=True)
class ExplainedRows(Sequence[tuple[Candidate, ExclusionReason | None]]):
    """`Catalog.explain()`'s answer as row indices into a CandidateTable and reason codes."""

    table: CandidateTable
    rows: IntArray
    codes: IntArray

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> tuple[Candidate, ExclusionReason | None]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[Candidate, ExclusionReason | None]]: ...

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return (self.table.candidates[int(self.rows[index])], reason_of(int(self.codes[index])))

    def __iter__(self) -> Iterator[tuple[Candidate, ExclusionReason | None]]:
        candidates = self.table.candidates
        for row, code in zip(self.rows.tolist(), self.codes.tolist(), strict=True):
            yield candidates[row], reason_of(code)

    def with_offer_reasons(
        self, clouds: Collection[str], reason_for: Callable[[Offer], ExclusionReason | None]
    ) -> ExplainedRows:
        """Feasible rows of `clouds` excluded with `reason_for(offer)`, where it gives one
        (asked once per feasible row of those clouds only: meant for small pools)."""
        indices = [self.table.clouds[c] for c in clouds if c in self.table.clouds]
        if not indices:
            return self
        picked = np.flatnonzero((self.codes == 0) & np.isin(self.table.cloud[self.rows], indices))
        if not len(picked):
            return self
        codes = self.codes.copy()
        candidates = self.table.candidates
        for i in picked.tolist():
            reason = reason_for(candidates[int(self.rows[i])].offer)
            if reason is not None:
                codes[i] = CODE[reason]
        return ExplainedRows(self.table, self.rows, codes)

    def with_cloud_reasons(self, reasons: Mapping[str, ExclusionReason]) -> ExplainedRows:
        """Feasible rows of the given clouds excluded with that cloud's reason."""
        if not reasons:
            return self
        per_cloud = np.zeros(len(self.table.clouds), np.int64)
        for cloud, index in self.table.clouds.items():
            reason = reasons.get(cloud)
            per_cloud[index] = 0 if reason is None else CODE[reason]
        extra = per_cloud[self.table.cloud[self.rows]]
        return ExplainedRows(self.table, self.rows, np.where(self.codes == 0, extra, self.codes))
