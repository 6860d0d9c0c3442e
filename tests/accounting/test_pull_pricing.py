"""What a checkpoint pull costs and protects, read from the store, the egress table and the
market's preemption rates: the inputs of the pull cadence."""

from __future__ import annotations

from pathlib import Path

from skyd.accounting.pull_pricing import PullPricing, losses_per_up_hour
from skyd.catalog.locate import candidate_dirs
from skyd.clock import VirtualClock
from skyd.config import RecoverySettings
from skyd.market.availability_log import AvailabilityLog
from skyd.optimizer.egress import find_egress_table
from skyd.optimizer.single import MarketSignals
from skyd.runner.pull_cadence import PullPrice
from skyd.runner.pulls import CheckpointPull
from skyd.store import availability as availability_store
from skyd.store import jobs as job_store
from tests.accounting.accounting_books import START, add_job, launch, new_store

GB = 1_000_000_000
KEY_A = "aws/us-east-1/us-east-1a/m5.large"  # the offerings accounting_books.launch records
KEY_B = "aws/us-west-2/us-west-2a/m5.large"


def pull(instance_id: str, nbytes: int = 5 * GB) -> CheckpointPull:
    return CheckpointPull(Path("/jobs/1/attempt-1"), "sim", instance_id, nbytes, "checkpoint:a:1")


def test_a_pull_is_priced_at_its_egress_its_instances_price_and_its_zones_risk(
    tmp_path: Path,
) -> None:
    store = new_store(tmp_path)
    signals = MarketSignals(
        preemptions_per_hour={"aws/us-east-1/us-east-1a": 0.3, "aws": 0.05},
        default_preemptions_per_hour=0.9,
    )
    pricing = PullPricing(
        store=store, table=find_egress_table(candidate_dirs()), signals=lambda: signals
    )
    job = add_job(store)
    launch(store, "spot-east", job_id=job, hourly_micros=1_200_000, at=START, spot=True)
    launch(
        store, "spot-west", job_id=job, hourly_micros=800_000, at=START, spot=True,
        region="us-west-2",
    )  # fmt: skip
    launch(store, "od", job_id=job, hourly_micros=3_000_000, at=START)
    launch(store, "gcp", job_id=job, hourly_micros=1_000_000, at=START, spot=True, cloud="gcp")
    # 5 GB out of AWS at $0.09/GB; the zone's own rate, else the cloud's, else the default
    assert pricing(pull("spot-east")) == PullPrice(450_000, 1_200_000, 0.3)
    assert pricing(pull("spot-west")) == PullPrice(450_000, 800_000, 0.05)
    assert pricing(pull("gcp")) == PullPrice(600_000, 1_000_000, 0.9)
    # on demand is not lost unannounced: a move or a cancel pulls once more first
    assert pricing(pull("od")) == PullPrice(450_000, 3_000_000, 0.0)
    assert pricing(pull("unknown")) is None


def test_a_job_with_a_deadline_is_not_priced(tmp_path: Path) -> None:
    """Its spot policy planned its changeovers with the work lost at checkpoint_sync_s."""
    store = new_store(tmp_path)
    job, _ = job_store.insert_job(
        store,
        name="deadline",
        owner_uid=1000,
        owner_name="u1000",
        project=None,
        priority=0,
        spec_json='{"run": "true"}',
        base_dir="/tmp",
        deadline=START + 48 * 3600,
        now=START,
    )
    launch(store, "spot", job_id=job.id, hourly_micros=1_200_000, at=START, spot=True)
    pricing = PullPricing(
        store=store, table=find_egress_table(candidate_dirs()), signals=MarketSignals
    )
    assert pricing(pull("spot")) is None


def test_a_zone_lost_more_often_than_the_market_says_is_priced_by_its_own_history(
    tmp_path: Path,
) -> None:
    """The market's rate is the spot advisor's guess unless skyd saw a loss; a week of the
    offering's own availability (the spot policy's log) shows how often it really goes."""
    store = new_store(tmp_path)
    now = START + 4 * 86400
    # us-east-1a's m5.large: up 10 h, down 1 h, six times, then up again for 6 h to now
    # (6 losses in 66 h up)
    with store.transaction() as conn:
        for cycle in range(6):
            at = now - 3 * 86400 + cycle * 11 * 3600
            availability_store.record_own(conn, KEY_A, at, True, "skyd-launch")
            availability_store.record_own(conn, KEY_A, at + 10 * 3600, False, "skyd-preemption")
        availability_store.record_own(conn, KEY_A, now - 3 * 86400 + 66 * 3600, True, "skyd-launch")
        # us-west-2a's: up all along but for one loss in 70 h
        availability_store.record_own(conn, KEY_B, now - 3 * 86400, True, "skyd-launch")
        availability_store.record_own(conn, KEY_B, now - 30 * 3600, False, "skyd-preemption")
        availability_store.record_own(conn, KEY_B, now - 29 * 3600, True, "skyd-launch")
    clock = VirtualClock(now)
    log = AvailabilityLog(store=store, clock=clock, settings=RecoverySettings(), providers={})
    signals = MarketSignals(preemptions_per_hour={"aws": 0.05})
    pricing = PullPricing(
        store=store,
        table=find_egress_table(candidate_dirs()),
        signals=lambda: signals,
        histories=log,
        clock=clock,
    )
    job = add_job(store)
    launch(store, "east", job_id=job, hourly_micros=1_000_000, at=START, spot=True)
    launch(
        store, "west", job_id=job, hourly_micros=1_000_000, at=START, spot=True,
        region="us-west-2",
    )  # fmt: skip
    launch(store, "unseen", job_id=job, hourly_micros=1_000_000, at=START, spot=True, cloud="gcp")
    east = pricing(pull("east"))
    assert east is not None and abs(east.losses_per_hour - 6 / 66) < 0.002
    # seen lost less often than the market's rate, or never seen: the market's rate
    assert pricing(pull("west")) == PullPrice(450_000, 1_000_000, 0.05)
    unseen = pricing(pull("unseen"))
    assert unseen is not None and unseen.losses_per_hour == signals.default_preemptions_per_hour
    assert losses_per_up_hour(log.zone_history("gcp/nowhere", now - 3600)) is None
