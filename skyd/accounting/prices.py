"""Price series for accrual: what an instance cost per hour at each moment of its life."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from skyd.accounting.records import ChargedInstance


class PriceSeries(Protocol):
    """Hourly prices in micro-dollars, piecewise constant in time.

    `changes_between` lists the moments in the open interval (start, end) where the running
    price may change, so accrual can charge each stretch at the price in force during it.
    """

    def price_at(self, instance: ChargedInstance, at: float) -> int: ...

    def changes_between(
        self, instance: ChargedInstance, start: float, end: float
    ) -> Sequence[float]: ...

    def stopped_price_at(self, instance: ChargedInstance, at: float) -> int: ...


class RecordedPrices:
    """The price recorded on the instance at launch, for its whole life (no market feed).

    Stopped instances cost what `stopped_hourly` says for "cloud/instance_type" (disks), else 0.
    """

    def __init__(self, stopped_hourly: Mapping[str, int] | None = None) -> None:
        self._stopped = dict(stopped_hourly or {})

    def price_at(self, instance: ChargedInstance, at: float) -> int:
        return instance.hourly_price_micros

    def changes_between(
        self, instance: ChargedInstance, start: float, end: float
    ) -> Sequence[float]:
        return ()

    def stopped_price_at(self, instance: ChargedInstance, at: float) -> int:
        return self._stopped.get(f"{instance.cloud}/{instance.instance_type}", 0)


def market_key(instance: ChargedInstance) -> str:
    """The offer key a price history is indexed by (spot and on-demand are separate markets)."""
    market = "spot" if instance.spot else "ondemand"
    return f"{instance.cloud}/{instance.region}/{instance.zone}/{instance.instance_type}/{market}"


class PriceHistory:
    """Prices that changed over time (e.g. spot prices), per market key.

    Before a market's first recorded change, or for a market with no history, the instance's
    recorded launch price applies.
    """

    def __init__(
        self,
        points: Mapping[str, Sequence[tuple[float, int]]],
        *,
        key: Callable[[ChargedInstance], str] = market_key,
        stopped_hourly: Mapping[str, int] | None = None,
    ) -> None:
        self._times: dict[str, list[float]] = {}
        self._prices: dict[str, list[int]] = {}
        for market, series in points.items():
            ordered = sorted(series)
            for at, price in ordered:
                if price < 0:
                    raise ValueError(f"price history {market} at {at}: negative price {price}")
            self._times[market] = [at for at, _ in ordered]
            self._prices[market] = [price for _, price in ordered]
        self._key = key
        self._recorded = RecordedPrices(stopped_hourly)

    def price_at(self, instance: ChargedInstance, at: float) -> int:
        market = self._key(instance)
        times = self._times.get(market)
        if not times:
            return instance.hourly_price_micros
        index = bisect.bisect_right(times, at) - 1
        if index < 0:
            return instance.hourly_price_micros
        return self._prices[market][index]

    def changes_between(
        self, instance: ChargedInstance, start: float, end: float
    ) -> Sequence[float]:
        times = self._times.get(self._key(instance))
        if not times:
            return ()
        low = bisect.bisect_right(times, start)
        high = bisect.bisect_left(times, end)
        return times[low:high]

    def stopped_price_at(self, instance: ChargedInstance, at: float) -> int:
        return self._recorded.stopped_price_at(instance, at)
