"""Price series for accrual: what an instance cost per hour at each moment of its life."""

from __future__ import annotations

import bisect
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from skyd.accounting.records import ChargedInstance


class PriceSeries(Protocol):
    """Hourly prices in micro-dollars, piecewise constant in time.

    `changes_between` lists the moments in the open interval (start, end) where the running
    price may change, so accrual can charge each stretch at the price in force during it.
    `is_flat` says the instance is charged its recorded launch price throughout (accrual then
    takes a shortcut). `refresh` runs at the start of every accrual pass, inside its
    transaction, so a series fed from the store sees what was recorded since the last pass.
    """

    def price_at(self, instance: ChargedInstance, at: float) -> int: ...

    def changes_between(
        self, instance: ChargedInstance, start: float, end: float
    ) -> Sequence[float]: ...

    def stopped_price_at(self, instance: ChargedInstance, at: float) -> int: ...

    def is_flat(self, instance: ChargedInstance) -> bool: ...

    def refresh(self, conn: sqlite3.Connection) -> None: ...


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

    def is_flat(self, instance: ChargedInstance) -> bool:
        return True

    def refresh(self, conn: sqlite3.Connection) -> None:
        return None


def market_key(instance: ChargedInstance) -> str:
    """The offer key a price history is indexed by (spot and on-demand are separate markets)."""
    market = "spot" if instance.spot else "ondemand"
    return f"{instance.cloud}/{instance.region}/{instance.zone}/{instance.instance_type}/{market}"


class PriceHistory:
    """Prices that changed over time (e.g. spot prices), per market key.

    Before a market's first recorded change, or for a market with no history, the instance's
    recorded launch price applies. `key` returning None means "no market: launch price".
    """

    def __init__(
        self,
        points: Mapping[str, Sequence[tuple[float, int]]],
        *,
        key: Callable[[ChargedInstance], str | None] = market_key,
        stopped_hourly: Mapping[str, int] | None = None,
    ) -> None:
        self._times: dict[str, list[float]] = {}
        self._prices: dict[str, list[int]] = {}
        for market, series in points.items():
            for at, price in series:
                self.add(market, at, price)
        self._key = key
        self._recorded = RecordedPrices(stopped_hourly)

    def add(self, market: str, at: float, price: int) -> None:
        """A price in force from `at` on (a later-added value wins at the same moment)."""
        if price < 0:
            raise ValueError(f"price history {market} at {at}: negative price {price}")
        times = self._times.setdefault(market, [])
        prices = self._prices.setdefault(market, [])
        index = bisect.bisect_right(times, at)
        if index and times[index - 1] == at:
            prices[index - 1] = price
            return
        times.insert(index, at)
        prices.insert(index, price)

    def _series(self, instance: ChargedInstance) -> list[float] | None:
        market = self._key(instance)
        return None if market is None else self._times.get(market)

    def price_at(self, instance: ChargedInstance, at: float) -> int:
        market = self._key(instance)
        times = None if market is None else self._times.get(market)
        if not times or market is None:
            return instance.hourly_price_micros
        index = bisect.bisect_right(times, at) - 1
        if index < 0:
            return instance.hourly_price_micros
        return self._prices[market][index]

    def changes_between(
        self, instance: ChargedInstance, start: float, end: float
    ) -> Sequence[float]:
        times = self._series(instance)
        if not times:
            return ()
        low = bisect.bisect_right(times, start)
        high = bisect.bisect_left(times, end)
        return times[low:high]

    def stopped_price_at(self, instance: ChargedInstance, at: float) -> int:
        return self._recorded.stopped_price_at(instance, at)

    def is_flat(self, instance: ChargedInstance) -> bool:
        return not self._series(instance)

    def refresh(self, conn: sqlite3.Connection) -> None:
        return None


def _spot_offer_key(instance: ChargedInstance) -> str | None:
    if not instance.spot:
        return None
    return f"{instance.cloud}/{instance.region}/{instance.zone}/{instance.instance_type}"


class MarketPrices(PriceHistory):
    """Spot instances at the spot prices the market pollers record (the store's
    `market_observations`, by offer key), from the moment each came in force; on-demand
    instances, and spot ones before any observation, at their launch price.

    A price observed after accrual has passed its moment is not applied to time already
    charged; `AccountingSettings.price_settle_seconds` makes accrual lag behind to wait for it.
    """

    def __init__(self, stopped_hourly: Mapping[str, int] | None = None) -> None:
        super().__init__({}, key=_spot_offer_key, stopped_hourly=stopped_hourly)
        self._seen_id = 0

    def refresh(self, conn: sqlite3.Connection) -> None:
        rows = conn.execute(
            "SELECT id, scope, at, spot_price_micros FROM market_observations"
            " WHERE id > ? AND spot_price_micros IS NOT NULL ORDER BY id",
            (self._seen_id,),
        ).fetchall()
        for row_id, scope, at, price in rows:
            self.add(scope, at, price)
            self._seen_id = row_id
