"""Where a job can run: the enabled providers' offerings matched against the job's alternatives."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from skyd.model import Candidate, Offer, OfferFilter
from skyd.providers.base import Provider


@dataclass(frozen=True, slots=True)
class Choice:
    provider: str
    candidate: Candidate


def _in_scope(offer: Offer, blocked: frozenset[str]) -> bool:
    scopes = (
        offer.cloud,
        f"{offer.cloud}/{offer.region}",
        f"{offer.cloud}/{offer.region}/{offer.zone}",
        offer.key,
    )
    return any(scope in blocked for scope in scopes)


def admits(offer: Offer, spot: bool, f: OfferFilter) -> bool:
    """Whether one offering, in one market, satisfies one alternative of a job."""
    price = offer.hourly_micros(spot)
    if price is None:
        return False
    if f.spot is not None and f.spot != spot:
        return False
    if f.accelerators and (offer.accelerator_name, offer.accelerator_count) not in f.accelerators:
        return False
    if f.cpus is not None and not f.cpus.admits(offer.vcpus):
        return False
    if f.memory_gib is not None and not f.memory_gib.admits(offer.memory_gib):
        return False
    if f.cloud is not None and f.cloud != offer.cloud:
        return False
    if f.region is not None and f.region != offer.region:
        return False
    if f.zone is not None and f.zone != offer.zone:
        return False
    if f.instance_type is not None and f.instance_type != offer.instance_type:
        return False
    if f.max_hourly_price_micros is not None and price > f.max_hourly_price_micros:
        return False
    return not _in_scope(offer, f.blocked)


class Placer:
    """Cheapest-first placement over the enabled providers (the optimizer refines this)."""

    def __init__(self, providers: Mapping[str, Provider]) -> None:
        self._providers = providers

    def candidates(self, filters: Sequence[OfferFilter]) -> list[tuple[str, Candidate]]:
        found: list[tuple[str, Candidate]] = []
        for name, provider in self._providers.items():
            for offer in provider.offers():
                for spot in (False, True):
                    if any(admits(offer, spot, f) for f in filters):
                        price = offer.hourly_micros(spot)
                        assert price is not None
                        found.append((name, Candidate(offer, spot, price)))
        found.sort(key=lambda pc: (pc[1].hourly_price_micros, pc[1].key))
        return found

    def infeasible_reason(self, filters: Sequence[OfferFilter]) -> str | None:
        """Why no enabled provider could ever run this job, or None if one could."""
        if self.candidates(filters):
            return None
        enabled = ", ".join(sorted(self._providers)) or "none"
        wanted = "; ".join(_describe(f) for f in filters)
        return f"no enabled provider offers {wanted} (enabled providers: {enabled})"

    def choose(
        self,
        filters: Sequence[OfferFilter],
        ordered: bool,
        has_capacity: Callable[[str, Candidate], bool],
    ) -> Choice | None:
        groups = [[f] for f in filters] if ordered else [list(filters)]
        for group in groups:
            for provider, candidate in self.candidates(group):
                if has_capacity(provider, candidate):
                    return Choice(provider, candidate)
        return None


def _describe(f: OfferFilter) -> str:
    parts: list[str] = []
    if f.accelerators:
        parts.append(" or ".join(f"{n}:{c}" for n, c in f.accelerators))
    if f.cpus is not None:
        parts.append(f"cpus={f.cpus}")
    if f.memory_gib is not None:
        parts.append(f"memory={f.memory_gib}")
    for label, value in (
        ("cloud", f.cloud),
        ("region", f.region),
        ("zone", f.zone),
        ("instance_type", f.instance_type),
    ):
        if value:
            parts.append(f"{label}={value}")
    if f.spot:
        parts.append("spot")
    return ", ".join(parts) or "any machine"
