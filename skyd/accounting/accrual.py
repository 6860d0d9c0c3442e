"""Turning instance time into ledger charges: price stretches, sub-micro carry, paying pools.

Pure computation (no store, no clock): `advance` splits one instance's unaccrued time at every
price change, pool start/expiry and ledger-period boundary, charges each piece at the price in
force, and asks a `PoolBook` who pays. Consecutive pieces with the same price and payer in the
same period grow one open stretch, which becomes a ledger row when it closes, so the ledger
holds about one row per instance per period, not one per tick (periods are staggered per
instance, so postings spread over passes). Money is exact: the remainder below one
micro-dollar is carried on, so the total never depends on how time was split. A stretch that
spans UTC midnight is posted as one row per day, its amount split by time.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from skyd.accounting.prices import PriceSeries
from skyd.accounting.records import ChargedInstance, CreditPool

MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000

# (provider, instance_id, job_id, owner_uid, project, cloud, region, pool_id, start_ms, end_ms,
#  hourly_price_micros, stopped, amount_micros) — the ledger's column order.
LedgerRow = tuple[
    str, str, int | None, int | None, str | None, str, str, int | None, int, int, int, int, int
]


def to_ms(seconds: float) -> int:
    return round(seconds * 1000)


@dataclass(slots=True)
class _PoolSlot:
    pool: CreditPool
    starts_ms: int
    until_ms: int
    balance: int

    def covers(self, instance: ChargedInstance, at_ms: int) -> bool:
        """Whether this pool may pay for `instance` at `at_ms` (balance aside)."""
        pool = self.pool
        return (
            self.starts_ms <= at_ms < self.until_ms
            and (pool.region is None or pool.region == instance.region)
            and (pool.account is None or pool.account == instance.account)
            and pool.may_pay_for(instance.owner_uid, instance.project)
        )


class PoolBook:
    """Balances of the credit pools during one accrual pass, and the rule for who pays.

    A charge at time t on cloud C is paid by the active pools of C whose scope (region,
    account, projects, users) covers the instance, the one expiring first first, each up to
    its balance; the rest is cash.
    """

    def __init__(self, pools: Iterable[CreditPool]) -> None:
        self._by_cloud: dict[str, list[_PoolSlot]] = {}
        self._boundaries: dict[str, list[int]] = {}
        self.spent: dict[int, int] = {}
        for pool in sorted(pools, key=lambda p: (p.usable_until, p.id)):
            slot = _PoolSlot(
                pool, to_ms(pool.starts_at), to_ms(pool.usable_until), pool.balance_micros
            )
            self._by_cloud.setdefault(pool.cloud, []).append(slot)
        for cloud, slots in self._by_cloud.items():
            edges = {s.starts_ms for s in slots} | {s.until_ms for s in slots}
            self._boundaries[cloud] = sorted(edges)

    def has_boundary(self, cloud: str, start_ms: int, end_ms: int) -> bool:
        """Whether a pool of `cloud` starts or ends strictly inside (start_ms, end_ms)."""
        edges = self._boundaries.get(cloud)
        if not edges:
            return False
        index = bisect.bisect_right(edges, start_ms)
        return index < len(edges) and edges[index] < end_ms

    def boundaries(self, cloud: str, start_ms: int, end_ms: int) -> list[int]:
        """Pool start/expiry moments strictly inside (start_ms, end_ms)."""
        edges = self._boundaries.get(cloud)
        if not edges:
            return []
        return [e for e in edges if start_ms < e < end_ms]

    def pay_whole(
        self, instance: ChargedInstance, at_ms: int, amount: int, payer: int | None
    ) -> bool:
        """Charge all of `amount` to `payer` (None = cash) if the rule of `pay` would; else
        change nothing and return False."""
        for slot in self._by_cloud.get(instance.cloud, ()):
            if slot.balance <= 0 or not slot.covers(instance, at_ms):
                continue
            if slot.pool.id != payer or slot.balance < amount:
                return False
            slot.balance -= amount
            self.spent[payer] = self.spent.get(payer, 0) + amount
            return True
        return payer is None

    def pay(
        self, instance: ChargedInstance, at_ms: int, amount: int
    ) -> list[tuple[int | None, int]]:
        """Split `amount` among the pools covering `instance` at `at_ms`; None = cash."""
        parts: list[tuple[int | None, int]] = []
        for slot in self._by_cloud.get(instance.cloud, ()):
            if amount == 0:
                break
            if slot.balance <= 0 or not slot.covers(instance, at_ms):
                continue
            part = min(slot.balance, amount)
            slot.balance -= part
            pool_id = slot.pool.id
            self.spent[pool_id] = self.spent.get(pool_id, 0) + part
            parts.append((pool_id, part))
            amount -= part
        if amount:
            parts.append((None, amount))
        return parts


@dataclass(slots=True)
class Accrual:
    """One instance's charging state: the watermark, the carry and the open stretch.

    `reshaped` says the stretch details (not only the amounts) changed since the last save.
    """

    watermark_id: int
    instance: ChargedInstance
    accrued_ms: int
    carry: int
    open_start_ms: int | None
    open_price: int
    open_pool_id: int | None
    open_stopped: bool
    open_amount: int
    seen_stopped: bool = False  # stopped at the last pass: the rate for the time since then
    settled: bool = False
    reshaped: bool = False

    def stretch_limit_ms(self, start_ms: int, period_ms: int) -> int:
        """The end of this instance's ledger period that `start_ms` falls in."""
        offset = (self.watermark_id * 60_000) % period_ms
        return ((start_ms - offset) // period_ms + 1) * period_ms + offset

    def close_stretch(self, rows: list[LedgerRow]) -> None:
        """Post the open stretch (if it charged anything) as ledger rows up to the watermark:
        one row, or one per UTC day it spans, its amount split by time (the daily roll-up
        needs every row inside one day; the parts add up to the exact amount)."""
        start = self.open_start_ms
        if start is not None and self.open_amount > 0:
            end = self.accrued_ms
            midnight = (start // MS_PER_DAY + 1) * MS_PER_DAY
            if midnight >= end:
                rows.append(
                    self._row(
                        self.open_pool_id,
                        start,
                        end,
                        self.open_price,
                        self.open_stopped,
                        self.open_amount,
                    )
                )
            else:
                cuts = [start, *range(midnight, end, MS_PER_DAY), end]
                posted = 0
                for a, b in itertools.pairwise(cuts):
                    upto = self.open_amount * (b - start) // (end - start)
                    if upto == posted:
                        continue
                    rows.append(
                        self._row(
                            self.open_pool_id,
                            a,
                            b,
                            self.open_price,
                            self.open_stopped,
                            upto - posted,
                        )
                    )
                    posted = upto
        if start is not None:
            self.reshaped = True
        self.open_start_ms = None
        self.open_amount = 0

    def _row(
        self,
        pool_id: int | None,
        start_ms: int,
        end_ms: int,
        price: int,
        stopped: bool,
        amount: int,
    ) -> LedgerRow:
        i = self.instance
        return (
            i.provider,
            i.instance_id,
            i.job_id,
            i.owner_uid,
            i.project,
            i.cloud,
            i.region,
            pool_id,
            start_ms,
            end_ms,
            price,
            int(stopped),
            amount,
        )

    def add_piece(
        self,
        a: int,
        b: int,
        price: int,
        stopped: bool,
        parts: list[tuple[int | None, int]],
        period_ms: int,
        rows: list[LedgerRow],
    ) -> None:
        """Add the charge for [a, b) (already split among payers) to the books."""
        payer = parts[0][0] if len(parts) == 1 else self.open_pool_id
        same = (
            self.open_start_ms is not None
            and len(parts) <= 1
            and self.open_price == price
            and self.open_stopped == stopped
            and (not parts or self.open_pool_id == payer)
            and a < self.stretch_limit_ms(self.open_start_ms, period_ms)
        )
        if not same:
            self.close_stretch(rows)
        if len(parts) > 1:
            # A pool ran dry inside this piece: post each payer's share at once, each over its
            # share of the time (the pool paid the first part, cash the rest), so the rows
            # tile [a, b) and summed durations count every millisecond once.
            total = sum(amount for _, amount in parts)
            posted = 0
            start = a
            for i, (pool, amount) in enumerate(parts):
                posted += amount
                end = b if i == len(parts) - 1 else a + (b - a) * posted // total
                rows.append(self._row(pool, start, end, price, stopped, amount))
                start = end
            self.accrued_ms = b
            return
        if not same:
            self.open_start_ms = a
            self.open_price = price
            self.open_stopped = stopped
            self.open_pool_id = payer
            self.reshaped = True
        self.open_amount += parts[0][1] if parts else 0
        self.accrued_ms = b


def extend_open_stretch(accrual: Accrual, end_ms: int, book: PoolBook, period_ms: int) -> bool:
    """The usual pass for an instance at its recorded price, done cheaply: grow the open
    running stretch up to `end_ms` when nothing splits it (no period or pool boundary, same
    price and payer). Returns False, changing nothing, when that does not apply."""
    start = accrual.open_start_ms
    instance = accrual.instance
    price = instance.hourly_price_micros
    if start is None or accrual.open_stopped or price != accrual.open_price:
        return False
    begin = accrual.accrued_ms
    offset = (accrual.watermark_id * 60_000) % period_ms
    period_end = ((start - offset) // period_ms + 1) * period_ms + offset
    if end_ms <= begin or end_ms > period_end:
        return False
    if book.has_boundary(instance.cloud, begin, end_ms):
        return False
    amount, carry = divmod(accrual.carry + price * (end_ms - begin), MS_PER_HOUR)
    if amount and not book.pay_whole(instance, begin, amount, accrual.open_pool_id):
        return False
    accrual.carry = carry
    accrual.open_amount += amount
    accrual.accrued_ms = end_ms
    return True


def advance(
    accrual: Accrual,
    end_ms: int,
    *,
    stopped: bool,
    prices: PriceSeries,
    book: PoolBook,
    period_ms: int,
    rows: list[LedgerRow],
) -> None:
    """Charge `accrual`'s instance from its watermark up to `end_ms`; closed stretches go to
    `rows`. The caller persists the accrual (watermark, carry, open stretch) with `rows`."""
    instance = accrual.instance
    start_ms = accrual.accrued_ms
    if end_ms <= start_ms:
        return
    changes = () if stopped else prices.changes_between(instance, start_ms / 1000, end_ms / 1000)
    limit = accrual.stretch_limit_ms(start_ms, period_ms)
    if not changes and end_ms <= limit and not book.has_boundary(instance.cloud, start_ms, end_ms):
        # the usual pass: one piece, no price change, no period or pool boundary inside
        _charge_piece(accrual, start_ms, end_ms, stopped, prices, book, period_ms, rows)
        return
    cuts = book.boundaries(instance.cloud, start_ms, end_ms)
    cuts.extend(c for c in map(to_ms, changes) if start_ms < c < end_ms)
    cuts.extend(range(limit, end_ms, period_ms))
    points = [start_ms, *sorted(set(cuts)), end_ms]
    for a, b in itertools.pairwise(points):
        _charge_piece(accrual, a, b, stopped, prices, book, period_ms, rows)


def _charge_piece(
    accrual: Accrual,
    a: int,
    b: int,
    stopped: bool,
    prices: PriceSeries,
    book: PoolBook,
    period_ms: int,
    rows: list[LedgerRow],
) -> None:
    instance = accrual.instance
    at = a / 1000
    price = prices.stopped_price_at(instance, at) if stopped else prices.price_at(instance, at)
    if price < 0:
        raise ValueError(
            f"price of {instance.provider}/{instance.instance_id} at {at}: "
            f"negative hourly price {price}"
        )
    amount, accrual.carry = divmod(accrual.carry + price * (b - a), MS_PER_HOUR)
    parts = book.pay(instance, a, amount) if amount else []
    accrual.add_piece(a, b, price, stopped, parts, period_ms, rows)
