"""Charging data that leaves a cloud: checkpoint pulls and job log reads to the daemon host
(whole or cut short), at the egress table's internet rate, paid like instance time (the
instance's pools first, then cash).

A cloud bills bytes leaving a VM for the internet per GB (catalogs/egress.csv, the table
data-aware placement prices inputs with). The daemon host is not in any cloud, so a pull is
priced as data leaving (cloud, region) for another cloud. A provider whose cloud has no row
(local, sim, slurm, kubernetes, the ssh pool) bills nothing: such a pull posts no charge.
Each pull with a price becomes ledger rows of kind 'transfer' in one transaction, under the
pull's key: the same checkpoint version reported again (a restarted daemon pulling it once
more before it had marked it done) finds its key and is not charged twice.
"""

from __future__ import annotations

import logging
import sqlite3

from skyd.accounting.accrual import PoolBook, to_ms
from skyd.accounting.records import ChargedInstance
from skyd.clock import Clock
from skyd.optimizer.egress import EgressTable
from skyd.runner.pulls import CheckpointPull
from skyd.store import Store
from skyd.store import credits as credit_store
from skyd.store import transfers as transfer_store

log = logging.getLogger("skyd.accounting")

BYTES_PER_GB = 1_000_000_000  # clouds bill decimal gigabytes
DAEMON_HOST = "(daemon host)"  # no cloud: data sent there leaves at the internet rate


def transfer_micros(nbytes: int, per_gb_micros: int) -> int:
    """What `nbytes` cost at `per_gb_micros` per GB: exact integer arithmetic, rounded to the
    nearest micro-dollar (half up), so a pull is never off by more than half a micro-dollar."""
    if nbytes < 0 or per_gb_micros < 0:
        raise ValueError(f"bytes {nbytes} and price {per_gb_micros} must not be negative")
    return (nbytes * per_gb_micros + BYTES_PER_GB // 2) // BYTES_PER_GB


def split_bytes(nbytes: int, parts: list[tuple[int | None, int]]) -> list[int]:
    """Each payer's share of the bytes, in proportion to its share of the amount (the shares
    add up to `nbytes`)."""
    total = sum(amount for _, amount in parts)
    if total == 0:
        return [nbytes] + [0] * (len(parts) - 1)
    shares, paid, given = [], 0, 0
    for _, amount in parts:
        paid += amount
        upto = nbytes * paid // total
        shares.append(upto - given)
        given = upto
    return shares


class TransferCharges:
    """The meter the SSH runner reports transfers to (checkpoint pulls, log reads): each
    priced one charged once, by its key."""

    def __init__(self, *, store: Store, clock: Clock, table: EgressTable) -> None:
        self.store = store
        self.clock = clock
        self.table = table
        self.charged = 0  # pulls charged since start

    def __call__(self, pull: CheckpointPull) -> None:
        self.charge(pull)

    def charge(self, pull: CheckpointPull) -> int:
        """Post the charge for `pull` unless its key already is; returns the micro-dollars
        charged now (0: free cloud, unknown instance, or charged before)."""
        with self.store.transaction() as conn:
            if transfer_store.transfer_posted(conn, pull.key):
                return 0
            instance = transfer_store.charged_instance(conn, pull.provider, pull.instance_id)
            if instance is None:
                log.warning(
                    "transfer of %d bytes from %s/%s: no such instance, not charged",
                    pull.nbytes,
                    pull.provider,
                    pull.instance_id,
                )
                return 0
            rate = self.table.per_gb_micros(instance.cloud, instance.region, DAEMON_HOST, "")
            if rate == 0:
                return 0  # a cloud that bills nothing for data leaving it
            amount = post_transfer(
                conn,
                instance,
                nbytes=pull.nbytes,
                per_gb_micros=rate,
                key=pull.key,
                at_ms=to_ms(self.clock.now()),
            )
        self.charged += 1
        log.info(
            "charged %d micro-dollars for %d bytes out of %s/%s (job %s)",
            amount,
            pull.nbytes,
            instance.cloud,
            instance.region,
            instance.job_id,
        )
        return amount


def post_transfer(
    conn: sqlite3.Connection,
    instance: ChargedInstance,
    *,
    nbytes: int,
    per_gb_micros: int,
    key: str,
    at_ms: int,
) -> int:
    """Charge `nbytes` at `per_gb_micros` to whoever `instance` charges, in the caller's
    transaction: rows of kind 'transfer' under `key` (one per payer, the instance's pools
    first, then cash), with its cloud and region. Returns the micro-dollars charged; posts
    nothing if `key` already is, or if the rate is 0 (a transfer that costs nothing)."""
    if per_gb_micros == 0 or transfer_store.transfer_posted(conn, key):
        return 0
    amount = transfer_micros(nbytes, per_gb_micros)
    book = PoolBook(credit_store.list_pools(conn))
    parts: list[tuple[int | None, int]] = [(None, 0)]  # bytes free at this size
    if amount:
        parts = book.pay(instance, at_ms, amount)
    rows = [
        (
            instance.provider,
            instance.instance_id,
            instance.job_id,
            instance.owner_uid,
            instance.project,
            instance.cloud,
            instance.region,
            pool_id,
            at_ms,
            share,
            per_gb_micros,
            part,
            key,
        )
        for (pool_id, part), share in zip(parts, split_bytes(nbytes, parts), strict=True)
    ]
    transfer_store.post_transfers(conn, rows, book.spent)
    return amount
