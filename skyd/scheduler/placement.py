"""Where a job should run now: its alternatives explained by the catalog, chosen by the optimizer.

Beyond the catalog's own reasons, a candidate is excluded here when no enabled provider
serves its cloud (PROVIDER_DISABLED), when its scope is blocked after a failed launch
(BLOCKED), when its provider has no free capacity right now (NO_QUOTA), or when its
provider can never hold the job's num_nodes machines at once (TOO_FEW_NODES).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from skyd.catalog.table import ExplainedRows
from skyd.errors import SpecError, UnknownAcceleratorError
from skyd.market.live import LiveMarket
from skyd.model import Candidate, ExclusionReason, Offer, OfferFilter
from skyd.optimizer import MarketSignals, PlacementDecision, PlacementRequest, place
from skyd.optimizer.egress import DataFootprint
from skyd.spec import TaskSpec


@dataclass(frozen=True, slots=True)
class PlacementContext:
    """The changing conditions of one decision, captured on the event loop so a worker thread
    can decide without touching live state."""

    blocked: frozenset[str] = frozenset()
    full_providers: frozenset[str] = frozenset()
    signals: MarketSignals | None = None
    assume_all_providers: bool = False  # as if every cloud's provider were enabled
    market_version: int = 0  # LiveMarket.version when captured (for caching decisions)
    every_cloud: bool = False  # explain: list candidates of disabled clouds too
    data_version: int = 0  # DataLocator.version when captured (what is known about buckets)


@dataclass(frozen=True, slots=True)
class PlacementOutcome:
    decision: PlacementDecision
    provider: str | None  # the provider that launches the chosen offering

    @property
    def candidate(self) -> Candidate | None:
        chosen = self.decision.chosen
        if chosen is None:
            return None
        return Candidate(chosen.offer, chosen.spot, chosen.hourly_price_micros)


def job_filters(spec: TaskSpec, market: LiveMarket) -> list[OfferFilter]:
    """The spec's alternatives as catalog queries, accelerator names normalized.

    An unknown accelerator is a spec error naming the field, with the catalog's suggestion."""
    try:
        return spec.offer_filters(
            market.catalog.normalize_accelerator, runs_containers=market.container_clouds
        )
    except UnknownAcceleratorError as exc:
        raise SpecError(
            f"resources.accelerators: {exc.message}", "resources.accelerators"
        ) from None


async def containers_known(market: LiveMarket, specs: Iterable[TaskSpec]) -> None:
    """Wait for the container-engine probe if any spec runs a docker image."""
    await market.engine_known(any(alt.docker_image for s in specs for alt in s.alternatives))


class DataSource(Protocol):
    """What skyd knows about tasks' buckets (skyd.market.data_location.DataLocator)."""

    version: int

    def footprint(self, spec: TaskSpec) -> DataFootprint | None: ...

    async def prefetch(self, spec: TaskSpec) -> None: ...

    def note(self, url: str) -> str | None: ...


class Placer:
    """`data` gives a task's data footprint (cache reads only, no I/O), so the egress of its
    buckets is part of every candidate's expected cost."""

    def __init__(self, market: LiveMarket, data: DataSource | None = None) -> None:
        self.market = market
        self.data = data

    def decide(
        self,
        spec: TaskSpec,
        *,
        deadline_hours: float | None = None,
        context: PlacementContext | None = None,
        filters: Sequence[OfferFilter] | None = None,
    ) -> PlacementOutcome:
        context = context or PlacementContext()
        blocked = context.blocked
        # placement looks only at launchable offerings; explain shows every cloud
        every = context.assume_all_providers or context.every_cloud
        catalog = self.market.catalog if every else self.market.enabled_catalog
        filters = list(filters if filters is not None else job_filters(spec, self.market))
        if blocked:
            filters = [replace(f, blocked=f.blocked | frozenset(blocked)) for f in filters]
        # per cloud: why its feasible candidates cannot be launched now, if they cannot
        cloud_reasons: dict[str, ExclusionReason] = {}
        for cloud in catalog.clouds:
            provider = self.market.provider_for(cloud)
            if provider is None:
                if not context.assume_all_providers:
                    cloud_reasons[cloud] = ExclusionReason.PROVIDER_DISABLED
            elif provider in context.full_providers:
                cloud_reasons[cloud] = ExclusionReason.NO_QUOTA
        # a gang needs every node at once: pools with fixed machines may hold too few
        nodes = spec.num_nodes
        limited = self.market.node_limited_clouds if nodes > 1 else frozenset()

        def too_few(offer: Offer) -> ExclusionReason | None:
            most = self.market.max_nodes(offer)
            return ExclusionReason.TOO_FEW_NODES if most is not None and most < nodes else None

        alternatives: list[Sequence[tuple[Candidate, ExclusionReason | None]]] = []
        for f in filters:
            explained = catalog.explain(f)
            if isinstance(explained, ExplainedRows):
                # too few nodes first: it holds for good, a full provider only for now
                explained = explained.with_offer_reasons(limited, too_few)
                alternatives.append(explained.with_cloud_reasons(cloud_reasons))
                continue
            rows = []
            for candidate, reason in explained:
                if reason is None and candidate.offer.cloud in limited:
                    reason = too_few(candidate.offer)
                if reason is None:
                    reason = cloud_reasons.get(candidate.offer.cloud)
                rows.append((candidate, reason))
            alternatives.append(rows)
        per_accelerator = {
            name: seconds / 3600.0
            for name, seconds in spec.estimated_runtime.items()
            if name != "*"
        }
        request = PlacementRequest(
            alternatives=alternatives,
            ordered=spec.is_ordered,
            objective=spec.objective.value,
            estimated_hours=spec.estimated_hours(),
            per_accelerator_hours=per_accelerator,
            deadline_hours=deadline_hours,
            num_nodes=spec.num_nodes,
            filters=filters,
            data=self.data.footprint(spec) if self.data is not None else None,
        )
        decision = place(request, context.signals or self.market.signals())
        provider = (
            self.market.provider_for(decision.chosen.offer.cloud)
            if decision.chosen is not None
            else None
        )
        return PlacementOutcome(decision, provider)
