"""Offerings read from the lab's own systems (Slurm partitions, Kubernetes nodes), read again
every `offers_refresh_seconds`: a cluster that did not answer when the daemon started, or that
gained or lost nodes since, is placed on without a restart."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from skyd.market.live import LiveMarket
from skyd.providers.base import OfferRefresher, Provider

log = logging.getLogger("skyd.market")

Seen = TypeVar("Seen")


class OfferRefresh(Generic[Seen]):
    """Reads the self-describing providers again on an interval. `seen()` is what placement
    sees of all providers (the planner's process gets the same); when a refresh changes it,
    the market takes the offerings anew and `on_change(seen)` runs (the planner's process
    and a pass)."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        market: LiveMarket,
        *,
        interval_seconds: float,
        seen: Callable[[], Seen],
        on_change: Callable[[Seen], None],
    ) -> None:
        self.providers = providers
        self.market = market
        self.interval_seconds = interval_seconds
        self.seen = seen
        self.on_change = on_change
        self._seen = seen()
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
        now = self.seen()
        if now == self._seen:
            return False
        self._seen = now
        before = len(self.market.enabled_catalog.offers)
        self.market.reload_providers(self.providers)
        self.changes += 1
        log.info(
            "offerings of the lab's own systems changed",
            extra={
                "offers_before": before,
                "offers_after": len(self.market.enabled_catalog.offers),
            },
        )
        self.on_change(now)
        return True

    async def run(self) -> None:
        """Refresh every `interval_seconds` until cancelled (nothing to do: wait forever)."""
        if not any(isinstance(p, OfferRefresher) for p in self.providers.values()):
            await asyncio.Event().wait()
        while True:
            await asyncio.sleep(self.interval_seconds)
            await self.refresh_once()
