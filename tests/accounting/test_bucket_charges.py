"""Bucket data a job moved, charged as data transfer: who bills (the bucket's cloud for reads,
the job's for writes back), at which rate (same region free, another region of the same
cloud inter-region, anywhere else internet), who pays (that cloud's pools, then cash), and
each (attempt, node, mount, direction) once, whatever re-reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyd.accounting.bucket_transfers import BucketCharges
from skyd.accounting.transfers import transfer_micros
from skyd.catalog.locate import candidate_dirs
from skyd.clock import VirtualClock
from skyd.config import DataSettings
from skyd.market.data_location import DataLocator
from skyd.optimizer.egress import find_egress_table
from skyd.runner.bucket_traffic import BucketTraffic, parse
from skyd.store import Store
from skyd.store import jobs as job_store
from tests.accounting.accounting_books import (
    START,
    accountant,
    add_grants,
    add_job,
    launch,
    new_store,
)

GB = 1_000_000_000
REGIONS = {
    "s3://east": "us-east-1",
    "s3://west": "us-west-2",
    "gs://central": "us-central1",
    "r2://cheap": "auto",
}


def meter(store: Store, clock: VirtualClock | None = None) -> BucketCharges:
    table = find_egress_table(candidate_dirs())
    clock = clock or VirtualClock(START)
    locator = DataLocator(DataSettings(bucket_regions=REGIONS), table, clock)
    return BucketCharges(store=store, clock=clock, table=table, locator=locator)


def traffic(url: str, direction: str, nbytes: int, dest: str = "/data") -> BucketTraffic:
    store = {"s3": "s3", "gs": "gcs", "r2": "r2"}[url.split(":")[0]]
    return BucketTraffic(0, "i-1", dest, url, store, "in" if direction == "in" else "out", nbytes)


def rows(store: Store) -> list[tuple[object, ...]]:
    return [
        tuple(r)
        for r in store.conn.execute(
            "SELECT cloud, region, pool_id, bytes, per_gb_micros, amount_micros, transfer_key"
            " FROM ledger WHERE kind = 'transfer' ORDER BY seq"
        )
    ]


@pytest.mark.parametrize(
    ("job_at", "moved", "billed", "rate"),
    [
        # read from S3 us-east-1: free in us-east-1, inter-region elsewhere in AWS, internet
        # to another cloud or to a lab's own host
        (("aws", "us-east-1"), ("s3://east", "in"), None, 0),
        (("aws", "us-east-1"), ("s3://west", "in"), ("aws", "us-west-2"), 20_000),
        (("gcp", "us-central1"), ("s3://east", "in"), ("aws", "us-east-1"), 90_000),
        (("local", "local"), ("s3://east", "in"), ("aws", "us-east-1"), 90_000),
        (("aws", "us-east-1"), ("gs://central", "in"), ("gcp", "us-central1"), 120_000),
        # written back: the job's cloud bills what leaves it
        (("gcp", "us-central1"), ("s3://east", "out"), ("gcp", "us-central1"), 120_000),
        (("aws", "us-west-2"), ("s3://east", "out"), ("aws", "us-west-2"), 20_000),
        (("aws", "us-east-1"), ("s3://east", "out"), None, 0),
        # clouds that bill nothing: a lab host writing out, R2 serving reads
        (("local", "local"), ("s3://east", "out"), None, 0),
        (("gcp", "us-central1"), ("r2://cheap", "in"), None, 0),
    ],
)
def test_each_direction_is_billed_by_the_cloud_the_data_leaves_at_its_rate(
    tmp_path: Path,
    job_at: tuple[str, str],
    moved: tuple[str, str],
    billed: tuple[str, str] | None,
    rate: int,
) -> None:
    store = new_store(tmp_path)
    job = job_store.get_job(store, add_job(store))
    launch(
        store, "i-1", job_id=job.id, hourly_micros=0, at=START, cloud=job_at[0], region=job_at[1]
    )
    nbytes = 7 * GB + 123_457
    charged = meter(store).charge(job, [traffic(moved[0], moved[1], nbytes)])
    assert charged == transfer_micros(nbytes, rate)
    if billed is None:
        assert rows(store) == []
    else:
        key = f"bucket:{job.id}:{job.attempt}:0:{moved[1]}:/data"
        amount = transfer_micros(nbytes, rate)
        assert rows(store) == [(*billed, None, nbytes, rate, amount, key)]


def test_a_report_read_again_after_a_restart_is_charged_once(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    job = job_store.get_job(store, add_job(store))
    launch(
        store, "i-1", job_id=job.id, hourly_micros=0, at=START, cloud="gcp", region="us-central1"
    )
    fetched = [traffic("s3://east", "in", 40 * GB)]
    assert meter(store, clock).charge(job, fetched) == 3_600_000  # 40 GB at $0.09
    clock.set(START + 60)
    again = meter(store, clock)  # a restarted daemon: nothing of the first in memory
    # the same report, with the write back the job did since
    report = [*fetched, traffic("s3://east", "out", 2 * GB)]
    assert again.charge(job, report) == 240_000
    assert again.charge(job, report) == 0
    assert [(r[3], r[5]) for r in rows(store)] == [(40 * GB, 3_600_000), (2 * GB, 240_000)]
    cost = store.conn.execute("SELECT cost_micros FROM jobs WHERE id = ?", (job.id,)).fetchone()
    assert cost[0] == 3_840_000
    # the same bucket at another mount of the job is its own transfer
    assert again.charge(job, [traffic("s3://east", "in", GB, dest="/more")]) == 90_000


async def test_charge_job_charges_the_new_once_and_not_an_unknown_instance(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    job = job_store.get_job(store, add_job(store))
    launch(
        store, "i-1", job_id=job.id, hourly_micros=0, at=START, cloud="gcp", region="us-central1"
    )
    charges = meter(store)
    never_launched = BucketTraffic(0, "i-unknown", "/x", "s3://east", "s3", "in", GB)
    report = [traffic("s3://east", "in", GB), never_launched]
    assert await charges.charge_job(job, report) == 90_000
    assert await charges.charge_job(job, report) == 0
    assert charges.charged == 1
    assert len(rows(store)) == 1


def test_a_read_is_paid_by_the_buckets_clouds_pools(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock)
    add_grants(books)
    job = job_store.get_job(store, add_job(store))
    launch(
        store, "i-1", job_id=job.id, hourly_micros=0, at=START, cloud="gcp", region="us-central1"
    )
    # a job on GCP reads 20 GB out of S3: AWS bills $1.80, its grant pays $1, cash the rest
    assert meter(store, clock).charge(job, [traffic("s3://east", "in", 20 * GB)]) == 1_800_000
    pools = dict(store.conn.execute("SELECT id, name FROM credit_pools").fetchall())
    assert [(pools.get(r[2]), r[5]) for r in rows(store)] == [
        ("aws-grant", 1_000_000),
        (None, 800_000),
    ]


def test_a_nodes_report_keeps_only_metered_entries() -> None:
    raw = [
        {"dest": "/d", "url": "s3://b", "store": "s3", "direction": "in", "bytes": 5},
        {"dest": "/m", "url": "s3://b", "store": "s3", "direction": "in", "bytes": None},  # FUSE
        {"dest": "/d", "url": "s3://b", "store": "s3", "direction": "sideways", "bytes": 5},
        {"dest": "/d", "url": "s3://b", "store": "s3", "direction": "out", "bytes": -1},
        {"dest": "/d", "url": "s3://b", "store": "s3", "direction": "out", "bytes": True},
        "junk",
    ]
    assert parse(raw, 2, "i-9") == [BucketTraffic(2, "i-9", "/d", "s3://b", "s3", "in", 5)]
    assert parse({"not": "a list"}, 0, "i-9") == []
