"""Charging the bucket data a job moved (skyd.runner.bucket_traffic) as data transfer, at the
egress table's rates, the ones data-aware placement priced it with (skyd.optimizer.egress).

A read bills the bucket's cloud (STORE_CLOUD: s3 → aws, gcs → gcp, …) for data leaving the
bucket's region for where the job ran: free within that region, the inter-region rate to
another region of the same cloud, the internet rate anywhere else. A write back bills the
job's cloud for data leaving where it ran for the bucket, the same way. A cloud the table
has no row for (local, sim, slurm, lambda; r2's row is free) bills nothing, so no row.

Each (attempt, node, mount, direction) is charged once under its key, in the ledger's
'transfer' rows, paid as checkpoint pulls are (pools of the billing cloud first, then cash).
The scheduler hands over what the attempt reported at every poll and when it ends; a
restarted daemon reads the same reports again and finds their keys posted.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from skyd.accounting.accrual import to_ms
from skyd.accounting.transfers import post_transfer
from skyd.clock import Clock
from skyd.market.data_location import DataLocator
from skyd.optimizer.egress import STORE_CLOUD, EgressTable
from skyd.runner.bucket_traffic import BucketTraffic
from skyd.spec import TaskSpec
from skyd.store import Store
from skyd.store import transfers as transfer_store
from skyd.store.records import JobRecord

log = logging.getLogger("skyd.accounting")


def traffic_key(job: JobRecord, traffic: BucketTraffic) -> str:
    """The charge's key: one per attempt, node, mount and direction."""
    return f"bucket:{job.id}:{job.attempt}:{traffic.rank}:{traffic.direction}:{traffic.dest}"


class BucketCharges:
    """Charges the bytes each attempt's buckets moved, each once."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        table: EgressTable,
        locator: DataLocator | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.table = table
        self.locator = locator  # where the buckets are; without one, regions are unknown
        self._settled: set[str] = set()  # keys charged (or found charged) by this process
        self.charged = 0  # charges posted since start

    async def charge_job(self, job: JobRecord, traffic: Sequence[BucketTraffic]) -> int:
        """Charge what `job`'s attempt reported and is not charged yet; returns the
        micro-dollars charged now. The buckets' regions are looked up first if they are not
        known (a restarted daemon has not looked up a running job's buckets)."""
        new = [t for t in traffic if traffic_key(job, t) not in self._settled]
        if not new:
            return 0
        if self.locator is not None and any(self.region_of(t.url) is None for t in new):
            await self.locator.prefetch(TaskSpec.from_json(job.spec_json))
        return self.charge(job, new)

    def region_of(self, url: str) -> str | None:
        return self.locator.region_of(url) if self.locator is not None else None

    def charge(self, job: JobRecord, traffic: Sequence[BucketTraffic]) -> int:
        provider = (job.placement or {}).get("provider")
        at_ms = to_ms(self.clock.now())
        total, settled, posted = 0, [], 0
        with self.store.transaction() as conn:
            for each in traffic:
                key = traffic_key(job, each)
                instance = transfer_store.charged_instance(
                    conn, None if provider is None else str(provider), each.instance_id
                )
                settled.append(key)
                if instance is None:
                    log.warning(
                        "job %d: %d bytes of %s: no instance %s, not charged",
                        job.id,
                        each.nbytes,
                        each.url,
                        each.instance_id,
                    )
                    continue
                cloud = STORE_CLOUD.get(each.store, each.store)
                region = self.region_of(each.url)
                if each.direction == "in":  # the bucket's cloud bills data leaving it
                    rate = self.table.per_gb_micros(cloud, region, instance.cloud, instance.region)
                    payer = dataclasses.replace(
                        instance, cloud=cloud, region=region or "", account=None
                    )
                else:  # the job's cloud bills what it writes out
                    rate = self.table.per_gb_micros(
                        instance.cloud, instance.region, cloud, region or ""
                    )
                    payer = instance
                if rate == 0 or each.nbytes == 0 or transfer_store.transfer_posted(conn, key):
                    continue  # free, nothing moved (an empty bucket copied), or charged
                total += post_transfer(
                    conn, payer, nbytes=each.nbytes, per_gb_micros=rate, key=key, at_ms=at_ms
                )
                posted += 1
        self._settled.update(settled)
        self.charged += posted
        if posted:
            log.info("job %d: charged %d micro-dollars for bucket data", job.id, total)
        return total
