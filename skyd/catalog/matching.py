"""Query semantics: which (offer, market) pairs an OfferFilter admits, and why not."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from skyd.catalog.network_tier import best_network
from skyd.model import POOL_CLOUDS, Candidate, ExclusionReason, Offer, OfferFilter

# An AWS availability-zone *name* (us-east-1a), as opposed to the AZ IDs the catalog holds.
_AWS_AZ_NAME = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d+[a-z]")

MarketOption = tuple[bool, int, ExclusionReason | None]


def markets(offer: Offer, spot: bool | None) -> Iterator[MarketOption]:
    """The (spot, hourly price, reason) markets of `offer` a request in `spot` looks at.

    A market the offer lacks is shown through its other market, with the reason, so an
    explanation still lists the offering (its price is then that of the market it has).
    """
    if spot is None or spot:
        if offer.spot_price_micros is not None:
            yield True, offer.spot_price_micros, None
        elif spot and offer.price_micros is not None:
            yield False, offer.price_micros, ExclusionReason.NO_SPOT_MARKET
    if spot is None or not spot:
        if offer.price_micros is not None:
            yield False, offer.price_micros, None
        elif spot is not None and offer.spot_price_micros is not None:
            yield True, offer.spot_price_micros, ExclusionReason.NOT_PRICED


def candidate_order(candidate: Candidate) -> tuple[int, str, str, str, str, bool]:
    offer = candidate.offer
    return (
        candidate.hourly_price_micros,
        offer.cloud,
        offer.region,
        offer.zone,
        offer.instance_type,
        candidate.spot,
    )


@dataclass(frozen=True, slots=True)
class CompiledFilter:
    """An OfferFilter with its names resolved once, so checking an offer is cheap."""

    source: OfferFilter
    accelerators: frozenset[tuple[str, int]]
    cloud: str | None
    countries: frozenset[str]

    @classmethod
    def compile(
        cls, f: OfferFilter, canonical_accelerator: Callable[[str], str | None]
    ) -> CompiledFilter:
        accelerators = set()
        for name, count in f.accelerators:
            # A name no catalog knows matches nothing (normalize first to get an error).
            canonical = canonical_accelerator(name)
            accelerators.add((canonical if canonical is not None else name, count))
        return cls(
            source=f,
            accelerators=frozenset(accelerators),
            cloud=f.cloud.lower() if f.cloud else None,
            countries=frozenset(code.upper() for code in f.countries),
        )

    def zone_matches(self, offer: Offer) -> bool:
        zone = self.source.zone
        if zone is None or zone == offer.zone:
            return True
        # The catalog knows AWS AZ IDs only; an AZ name cannot be mapped to an ID without
        # the account, so it pins the region and the provider picks the named AZ.
        return (
            offer.cloud == "aws"
            and _AWS_AZ_NAME.fullmatch(zone) is not None
            and zone[:-1] == offer.region
        )

    def is_blocked(self, offer: Offer, spot: bool) -> bool:
        blocked = self.source.blocked
        if not blocked:
            return False
        region = f"{offer.cloud}/{offer.region}"
        key = offer.key
        return (
            offer.cloud in blocked
            or region in blocked
            or f"{region}/{offer.zone}" in blocked
            or key in blocked
            or f"{key}/{'spot' if spot else 'ondemand'}" in blocked
        )

    def exclusion(
        self,
        offer: Offer,
        spot: bool,
        price: int,
        market_reason: ExclusionReason | None,
        country: str | None,
    ) -> ExclusionReason | None:
        """The first reason this (offer, market) is excluded, or None when it is feasible.

        Order: pins, accelerators, resources, country, faster network, market, max price,
        blocked.
        """
        reason = self.offer_exclusion(offer, country)
        if reason is not None:
            return reason
        return self.market_exclusion(offer, spot, price, market_reason)

    def offer_exclusion(self, offer: Offer, country: str | None) -> ExclusionReason | None:
        """The first reason that excludes every market of `offer`, or None."""
        f = self.source
        if (
            (self.cloud is not None and offer.cloud != self.cloud)
            or (f.region is not None and offer.region != f.region)
            or not self.zone_matches(offer)
            or (f.instance_type is not None and offer.instance_type != f.instance_type)
        ):
            return ExclusionReason.PINNED_ELSEWHERE
        if (
            self.accelerators
            and (offer.accelerator_name, offer.accelerator_count) not in self.accelerators
        ):
            return ExclusionReason.ACCELERATOR_MISMATCH
        pool = offer.cloud in POOL_CLOUDS
        if (f.cpus is not None and not f.cpus.admits(offer.vcpus, pool=pool)) or (
            f.memory_gib is not None and not f.memory_gib.admits(offer.memory_gib, pool=pool)
        ):
            return ExclusionReason.RESOURCES_TOO_SMALL
        if self.countries and country not in self.countries:
            return ExclusionReason.COUNTRY_NOT_ALLOWED
        if f.faster_network and best_network(offer) is None:
            return ExclusionReason.NO_FASTER_NETWORK
        return None

    def market_exclusion(
        self, offer: Offer, spot: bool, price: int, market_reason: ExclusionReason | None
    ) -> ExclusionReason | None:
        """The first reason that excludes this one market of an otherwise admitted offer."""
        if market_reason is not None:
            return market_reason
        limit = self.source.max_hourly_price_micros
        if limit is not None and price > limit:
            return ExclusionReason.OVER_MAX_PRICE
        if self.is_blocked(offer, spot):
            return ExclusionReason.BLOCKED
        return None
