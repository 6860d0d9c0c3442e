"""The daemon's live market: catalog + provider offerings, live spot prices, spot risk, blocks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from skyd.catalog import Catalog
from skyd.model import Offer
from skyd.optimizer import MarketSignals
from skyd.optimizer.preference import region_ranks
from skyd.providers.base import NodeLimited, Provider

# A spot price move smaller than this is noise: no market event, no re-placement.
SIGNIFICANT_PRICE_CHANGE = 0.05


@dataclass(frozen=True, slots=True)
class MarketChange:
    """A change worth re-optimizing for."""

    scope: str  # offer key or zone scope
    kind: str  # "spot_price" | "availability" | "preemption" | "blocked"
    old: float | None
    new: float | None


class LiveMarket:
    """Everything placement needs to know about offerings right now (in memory; the store keeps
    the history). Catalog clouds are served by the provider of the same name; providers that
    are not catalog clouds (local, sim, ssh) bring their own offerings."""

    def __init__(self, base: Catalog, providers: Mapping[str, Provider]) -> None:
        self._base = base
        self.version = 0  # bumped on every change: cached placements older than it are stale
        self._home: tuple[Sequence[str], Sequence[str]] = ((), ())
        self._load(providers)
        self.spot_prices: dict[str, int] = {}
        self.preemptions_per_hour: dict[str, float] = {}
        # spot markets (Candidate keys, `<offer key>/spot`) known to have no capacity now
        self.unavailable: set[str] = set()
        # host-process clouds that can run `image_id: docker:` jobs (a working engine here)
        self.container_clouds: frozenset[str] = frozenset()
        # the container-engine probe (daemon start asks it in the background) and how many
        # requests wait for its answer
        self.engine_probe: asyncio.Future[str | None] | None = None
        self.waiting_for_engine = 0
        self.region_rank: dict[str, int] = {}
        self.default_region_rank = 0
        self.prefer_regions((), ())

    def _load(self, providers: Mapping[str, Provider]) -> None:
        """The catalog from the base one and the offerings of providers that bring their own."""
        base = self._base
        extra: list[Offer] = []
        cloud_provider: dict[str, str] = {}
        # providers that hold a fixed number of machines, by the cloud they serve
        node_limited: dict[str, NodeLimited] = {}
        for name, provider in providers.items():
            if name in base.clouds:
                cloud_provider[name] = name
                continue
            for offer in provider.offers():
                extra.append(offer)
                cloud_provider[offer.cloud] = name
                if isinstance(provider, NodeLimited):
                    node_limited[offer.cloud] = provider
        self._cloud_provider = cloud_provider
        self._node_limited = node_limited
        # everything known (explain, names, prices) …
        self.catalog = base.extended(extra, clouds=cloud_provider)
        # … and what can actually be launched (placement scans only this)
        self.enabled_catalog = Catalog(
            (o for o in self.catalog.offers if o.cloud in cloud_provider),
            {},
            clouds=cloud_provider,
        ).with_regions_of(self.catalog)
        self.version += 1

    def reload_providers(self, providers: Mapping[str, Provider]) -> None:
        """Take the providers' offerings again (a lab cluster read anew): placements cached
        before are stale, and regions are ranked again with the same home preference."""
        self._load(providers)
        self.prefer_regions(*self._home)

    def prefer_regions(self, home_regions: Sequence[str], home_countries: Sequence[str]) -> None:
        """Rank regions for ties between equal candidates (skyd.optimizer.preference)."""
        self._home = (tuple(home_regions), tuple(home_countries))
        catalog = self.catalog
        regions = {(o.cloud, o.region) for o in catalog.offers}
        self.region_rank = region_ranks(
            ((c, r, catalog.country_of(c, r)) for c, r in sorted(regions)),
            home_regions,
            home_countries,
        )
        self.default_region_rank = len(home_regions) + 1
        self.version += 1

    async def engine_known(self, wants_containers: bool) -> None:
        """A request about a container job waits for the engine probe's answer: where the
        job may run depends on it (`container_clouds`). Others never wait."""
        probe = self.engine_probe
        if not wants_containers or probe is None or probe.done():
            return
        self.waiting_for_engine += 1
        try:
            with contextlib.suppress(Exception):  # a failed probe reads as "no engine"
                await asyncio.shield(probe)
        finally:
            self.waiting_for_engine -= 1

    def warm(self) -> None:
        """Build what placement queries use, so the first decision does not (a thread may
        call this; a query racing it builds the same columns itself)."""
        self.enabled_catalog.candidate_table()
        self.catalog.candidate_table()

    def provider_for(self, cloud: str) -> str | None:
        """The enabled provider that launches offerings of `cloud`, if any."""
        return self._cloud_provider.get(cloud)

    @property
    def node_limited_clouds(self) -> frozenset[str]:
        """Clouds whose provider holds a fixed number of machines (see `max_nodes`)."""
        return frozenset(self._node_limited)

    def max_nodes(self, offer: Offer) -> int | None:
        """How many nodes of `offer` one job can get at most (None: no known limit)."""
        provider = self._node_limited.get(offer.cloud)
        return None if provider is None else provider.max_nodes(offer)

    @property
    def enabled_clouds(self) -> frozenset[str]:
        return frozenset(self._cloud_provider)

    def signals(self) -> MarketSignals:
        return MarketSignals(
            spot_price_micros=dict(self.spot_prices),
            preemptions_per_hour=dict(self.preemptions_per_hour),
            region_rank=self.region_rank,
            default_region_rank=self.default_region_rank,
        )

    def set_spot_price(self, offer_key: str, micros: int) -> MarketChange | None:
        """Record a live spot price; returns the change when it is significant."""
        old = self.spot_prices.get(offer_key)
        if old is None:
            offer = self.catalog.offer_by_key(offer_key)
            old = offer.spot_price_micros if offer else None
        self.spot_prices[offer_key] = micros
        if old != micros:
            self.version += 1
        if old is None or old == 0 or abs(micros - old) / old >= SIGNIFICANT_PRICE_CHANGE:
            return MarketChange(offer_key, "spot_price", _dollars(old), _dollars(micros))
        return None

    def set_availability(self, offer_key: str, available: bool) -> MarketChange | None:
        market_key = f"{offer_key}/spot"
        was = market_key not in self.unavailable
        if available:
            self.unavailable.discard(market_key)
        else:
            self.unavailable.add(market_key)
        if was != available:
            self.version += 1
            return MarketChange(offer_key, "availability", float(was), float(available))
        return None

    def set_preemption_rate(self, scope: str, per_hour: float) -> MarketChange | None:
        old = self.preemptions_per_hour.get(scope)
        self.preemptions_per_hour[scope] = per_hour
        if old != per_hour:
            self.version += 1
        if old is None or abs(per_hour - old) > 0.01:
            return MarketChange(scope, "availability", old, per_hour)
        return None


def _dollars(micros: int | None) -> float | None:
    return None if micros is None else micros / 1_000_000
