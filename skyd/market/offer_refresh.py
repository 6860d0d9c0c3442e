"""Offerings read from the lab's own systems (Slurm partitions, Kubernetes nodes), read again
every `offers_refresh_seconds`: a cluster that did not answer when the daemon started, or that
gained or lost nodes since, is placed on without a restart."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from skyd.market.live import LiveMarket
from skyd.model import Offer
from skyd.providers.base import NodeLimited, OfferRefresher, Provider

log = logging.getLogger("skyd.market")

# What placement sees of one provider: its offerings and, for fixed pools, each one's node cap.
Shape = tuple[tuple[Offer, ...], tuple[int | None, ...]]


def offer_shapes(providers: Mapping[str, Provider]) -> dict[str, Shape]:
    """Each self-describing provider's offerings and node caps as of now (for comparison)."""
    shapes: dict[str, Shape] = {}
    for name, provider in providers.items():
        if not isinstance(provider, OfferRefresher):
            continue
        offers = tuple(provider.offers())
        caps = tuple(
            provider.max_nodes(o) if isinstance(provider, NodeLimited) else None for o in offers
        )
        shapes[name] = (offers, caps)
    return shapes


class OfferRefresh:
    """Reads the self-describing providers again on an interval; on any change the market
    takes their offerings anew and `on_change` runs (the planner's process and a pass)."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        market: LiveMarket,
        *,
        interval_seconds: float,
        on_change: Callable[[], None],
    ) -> None:
        self.providers = providers
        self.market = market
        self.interval_seconds = interval_seconds
        self.on_change = on_change
        self._seen = offer_shapes(providers)
        self.reads = 0  # refreshes done
        self.changes = 0  # how many of them changed what placement sees

    async def refresh_once(self) -> bool:
        """Read every self-describing provider once; whether what placement sees changed."""
        for name, provider in self.providers.items():
            if not isinstance(provider, OfferRefresher):
                continue
            try:
                await provider.refresh()
            except Exception as exc:  # a provider's bug must not stop the others' refresh
                log.warning("offers of %s not read again: %s", name, exc)
        self.reads += 1
        now = offer_shapes(self.providers)
        if now == self._seen:
            return False
        before = sum(len(offers) for offers, _ in self._seen.values())
        after = sum(len(offers) for offers, _ in now.values())
        self._seen = now
        self.market.reload_providers(self.providers)
        self.changes += 1
        log.info(
            "offerings of the lab's own systems changed",
            extra={"offers_before": before, "offers_after": after},
        )
        self.on_change()
        return True

    async def run(self) -> None:
        """Refresh every `interval_seconds` until cancelled (nothing to do: wait forever)."""
        if not any(isinstance(p, OfferRefresher) for p in self.providers.values()):
            await asyncio.Event().wait()
        while True:
            await asyncio.sleep(self.interval_seconds)
            await self.refresh_once()
