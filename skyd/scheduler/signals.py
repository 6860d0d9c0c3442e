"""Market signals skyd sees itself (a spot launch refused, a preemption), fed back to the market."""

from __future__ import annotations

from collections.abc import Callable

from skyd.clock import Clock
from skyd.market.live import LiveMarket
from skyd.store import Store
from skyd.store import availability as availability_store
from skyd.store.market import Observation

OBSERVED_PREEMPTIONS_PER_HOUR = 0.5  # what one observed loss implies, at least

Observe = Callable[[list[Observation]], object]


def _unrecorded(observations: list[Observation]) -> None:
    """Before the daemon wires the market poller in, observations go nowhere."""


class ObservedRisk:
    """Raises an offering's preemption rate when skyd itself saw it fail (the strongest signal
    there is): the optimizer prices it in and the market history records it. `observe` is the
    market poller's apply. With a store, what it saw is also the offering's spot
    availability history (unless a market source already feeds that offering's)."""

    def __init__(self, market: LiveMarket, clock: Clock, store: Store | None = None) -> None:
        self.market = market
        self.clock = clock
        self.store = store
        self.observe: Observe = _unrecorded

    def spot_availability(self, offer_key: str, available: bool, source: str) -> None:
        """Spot capacity of `offer_key` was there (a launch worked) or not (refused, lost)."""
        if self.store is None:
            return
        with self.store.transaction() as conn:
            availability_store.record_own(conn, offer_key, self.clock.now(), available, source)

    def seen(self, offer_key: str, source: str) -> None:
        held = self.market.preemptions_per_hour.get(offer_key, 0.0)
        rate = max(OBSERVED_PREEMPTIONS_PER_HOUR, 2 * held)
        self.observe(
            [
                Observation(
                    scope=offer_key,
                    at=self.clock.now(),
                    source=source,
                    preemptions_per_hour=rate,
                )
            ]
        )
        self.spot_availability(offer_key, False, source)
