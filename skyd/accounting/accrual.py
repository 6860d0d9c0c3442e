"""Turning instance time into ledger charges: price segments, sub-micro carry, paying pools.

Pure computation (no store, no clock): `charge_span` splits one instance's unaccrued time at
every price change, pool start/expiry and UTC midnight, charges each stretch at the price in
force, and asks a `PoolBook` who pays. Money is exact: the remainder below one micro-dollar
is carried to the next stretch, so the total never depends on how time was split into ticks.
"""

from __future__ import annotations

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
    pool_id: int
    region: str | None
    account: str | None
    starts_ms: int
    until_ms: int
    balance: int


class PoolBook:
    """Balances of the credit pools during one accrual pass, and the rule for who pays.

    A charge at time t on cloud C is paid by the active pools of C whose scope covers the
    instance, the one expiring first first, each up to its balance; the rest is cash.
    """

    def __init__(self, pools: Iterable[CreditPool]) -> None:
        self._by_cloud: dict[str, list[_PoolSlot]] = {}
        self._boundaries: dict[str, list[int]] = {}
        self.spent: dict[int, int] = {}
        for pool in sorted(pools, key=lambda p: (p.usable_until, p.id)):
            slot = _PoolSlot(
                pool.id,
                pool.region,
                pool.account,
                to_ms(pool.starts_at),
                to_ms(pool.usable_until),
                pool.balance_micros,
            )
            self._by_cloud.setdefault(pool.cloud, []).append(slot)
        for cloud, slots in self._by_cloud.items():
            edges = {s.starts_ms for s in slots} | {s.until_ms for s in slots}
            self._boundaries[cloud] = sorted(edges)

    def boundaries(self, cloud: str, start_ms: int, end_ms: int) -> list[int]:
        """Pool start/expiry moments strictly inside (start_ms, end_ms)."""
        edges = self._boundaries.get(cloud)
        if not edges:
            return []
        return [e for e in edges if start_ms < e < end_ms]

    def pay(
        self, instance: ChargedInstance, at_ms: int, amount: int
    ) -> list[tuple[int | None, int]]:
        """Split `amount` among the pools covering `instance` at `at_ms`; None = cash."""
        parts: list[tuple[int | None, int]] = []
        for slot in self._by_cloud.get(instance.cloud, ()):
            if amount == 0:
                break
            if slot.balance <= 0 or not slot.starts_ms <= at_ms < slot.until_ms:
                continue
            if slot.region is not None and slot.region != instance.region:
                continue
            if slot.account is not None and slot.account != instance.account:
                continue
            part = min(slot.balance, amount)
            slot.balance -= part
            self.spent[slot.pool_id] = self.spent.get(slot.pool_id, 0) + part
            parts.append((slot.pool_id, part))
            amount -= part
        if amount:
            parts.append((None, amount))
        return parts


def charge_span(
    instance: ChargedInstance,
    *,
    start_ms: int,
    end_ms: int,
    carry: int,
    stopped: bool,
    prices: PriceSeries,
    book: PoolBook,
    rows: list[LedgerRow],
) -> int:
    """Append the ledger rows for [start_ms, end_ms) to `rows`; return the new carry."""
    cuts = book.boundaries(instance.cloud, start_ms, end_ms)
    if not stopped:
        changes = prices.changes_between(instance, start_ms / 1000, end_ms / 1000)
        cuts.extend(c for c in map(to_ms, changes) if start_ms < c < end_ms)
    midnight = (start_ms // MS_PER_DAY + 1) * MS_PER_DAY
    while midnight < end_ms:
        cuts.append(midnight)
        midnight += MS_PER_DAY
    points = [start_ms, *sorted(set(cuts)), end_ms] if cuts else [start_ms, end_ms]
    for a, b in itertools.pairwise(points):
        at = a / 1000
        price = prices.stopped_price_at(instance, at) if stopped else prices.price_at(instance, at)
        if price < 0:
            raise ValueError(
                f"price of {instance.provider}/{instance.instance_id} at {at}: "
                f"negative hourly price {price}"
            )
        amount, carry = divmod(carry + price * (b - a), MS_PER_HOUR)
        if amount == 0:
            continue
        for pool_id, part in book.pay(instance, a, amount):
            rows.append(
                (
                    instance.provider,
                    instance.instance_id,
                    instance.job_id,
                    instance.owner_uid,
                    instance.project,
                    instance.cloud,
                    instance.region,
                    pool_id,
                    a,
                    b,
                    price,
                    int(stopped),
                    part,
                )
            )
    return carry
