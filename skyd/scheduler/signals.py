"""Market signals skyd sees itself (a spot launch refused, a preemption), fed back to the market."""

from __future__ import annotations

from collections.abc import Callable

from skyd.clock import Clock
from skyd.market.live import LiveMarket
from skyd.store.market import Observation

OBSERVED_PREEMPTIONS_PER_HOUR = 0.5  # what one observed loss implies, at least

Observe = Callable[[list[Observation]], object]


def _unrecorded(observations: list[Observation]) -> None:
    """Before the daemon wires the market poller in, observations go nowhere."""


class ObservedRisk:
    """Raises an offering's preemption rate when skyd itself saw it fail (the strongest signal
    there is): the optimizer prices it in and the market history records it. `observe` is the
    market poller's apply."""

    def __init__(self, market: LiveMarket, clock: Clock) -> None:
        self.market = market
        self.clock = clock
        self.observe: Observe = _unrecorded

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
