"""Shared pieces of the dashboard tests: the fake daemon's fixed data and a bounded wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from skyd.testing.canned_daemon import FakeDaemon, fake_job, fake_placement

JsonObject = dict[str, Any]

# Sunday 2026-11-22 12:00:00 UTC: every timestamp of the fake's data is near it.
T0 = 1_795_348_800.0
NOW = T0 + 3_600.0


def cluster(
    name: str,
    state: str,
    cloud: str,
    *,
    up_at: float,
    idle_since: float | None,
    autostop: tuple[int, bool] | None,
    active_jobs: list[int],
) -> JsonObject:
    """A cluster as GET /v1/clusters shows it."""
    return {
        "id": len(name),
        "name": name,
        "state": state,
        "owner": "ana",
        "owner_uid": 1000,
        "provider": cloud,
        "cloud": cloud,
        "region": "us-east-1",
        "zone": "us-east-1a",
        "instance_type": "p4d.24xlarge",
        "accelerators": "A100:8",
        "spot": False,
        "hourly_price": 32.77,
        "instances": [f"i-{name}"],
        "autostop": None
        if autostop is None
        else {"idle_minutes": autostop[0], "down": autostop[1]},
        "idle_since": idle_since,
        "active_jobs": active_jobs,
        "created_at": up_at - 60,
        "up_at": up_at,
        "ended_at": None,
        "reason": None,
    }


def offer(key: str, gpu: str, count: int, *, price: float, spot: float | None) -> JsonObject:
    """An offering as GET /v1/prices shows it."""
    cloud, region, zone, instance_type = key.split("/")
    return {
        "key": key,
        "cloud": cloud,
        "region": region,
        "zone": zone,
        "instance_type": instance_type,
        "accelerator_name": gpu,
        "accelerator_count": count,
        "vcpus": 8.0,
        "memory_gib": 64.0,
        "price": price,
        "spot_price": spot,
    }


def populated_fake() -> FakeDaemon:
    fake = FakeDaemon()
    aws = fake_placement("aws", "us-east-1", "g5.xlarge", spot=True, hourly_price=0.45)
    gcp = fake_placement("gcp", "us-central1", "a2-highgpu-1g", spot=False, hourly_price=3.67)
    fake.add_job(
        fake_job(
            1,
            at=T0,
            name="train-resnet",
            state="RUNNING",
            started_at=T0 + 60,
            placement=aws,
            deadline=T0 + 4 * 3600,
            cost=0.30,
            project="vision",
        )
    )
    fake.add_job(fake_job(2, at=T0 + 300, name="eval[big]", state="PENDING", owner="bo"))
    fake.add_job(
        fake_job(
            3,
            at=T0 + 600,
            name="sweep-7",
            state="RECOVERING",
            placement=gcp,
            started_at=T0 + 700,
            preemptions=1,
            deadline=T0 + 3000,
        )
    )
    fake.add_job(
        fake_job(
            4,
            at=T0 + 900,
            name="done-job",
            state="SUCCEEDED",
            placement=gcp,
            started_at=T0 + 960,
            ended_at=T0 + 1500,
            cost=0.55,
        )
    )
    for job_id, kind, state, reason, at in [
        (1, "submitted", "PENDING", "submitted by ana", T0),
        (1, "state", "PROVISIONING", "placed on aws us-east-1: cheapest spot offer", T0 + 10),
        (1, "state", "RUNNING", "setup finished; run started", T0 + 60),
        (2, "submitted", "PENDING", "submitted by bo", T0 + 300),
        (3, "submitted", "PENDING", "submitted by ana", T0 + 600),
        (3, "preempted", "RECOVERING", "spot capacity gone in us-central1-a", T0 + 1200),
    ]:
        fake.publish(job_id, kind, at=at, state=state, reason=reason)
    fake.state.logs[1] = "epoch 1 loss 0.91\nepoch 2 loss 0.62\n"
    fake.state.extras.update(
        {
            "/v1/clusters": {
                "clusters": [
                    cluster(
                        "dev-a100",
                        "UP",
                        "aws",
                        up_at=T0 + 600,
                        idle_since=T0 + 3000,
                        autostop=(30, False),
                        active_jobs=[],
                    ),
                    cluster(
                        "sweeps",
                        "UP",
                        "gcp",
                        up_at=T0 + 1200,
                        idle_since=None,
                        autostop=(60, True),
                        active_jobs=[3],
                    ),
                    cluster(
                        "old-box",
                        "STOPPED",
                        "aws",
                        up_at=T0,
                        idle_since=None,
                        autostop=None,
                        active_jobs=[],
                    ),
                ]
            },
            "/v1/prices": [
                offer("aws/us-east-1//p4d.24xlarge", "A100", 8, price=32.77, spot=None),
                offer(
                    "gcp/us-central1/us-central1-a/a2-highgpu-1g", "A100", 1, price=3.67, spot=1.1
                ),
                offer("aws/us-east-1//g5.xlarge", "A10G", 1, price=1.006, spot=0.45),
            ],
            "/v1/prices?spot=1": [
                offer(
                    "gcp/us-central1/us-central1-a/a2-highgpu-1g", "A100", 1, price=3.67, spot=1.1
                ),
                offer("aws/us-east-1/use1-az2/g5.xlarge", "A10G", 1, price=1.006, spot=0.39),
            ],
            "/v1/prices/history?offering=gcp/us-central1/us-central1-a/a2-highgpu-1g": {
                "offering": offer(
                    "gcp/us-central1/us-central1-a/a2-highgpu-1g", "A100", 1, price=3.67, spot=1.1
                ),
                "catalog_spot_price": 1.2,
                "history": [
                    {
                        "at": T0 + i * 600,
                        "spot_price": p,
                        "available": True,
                        "preemptions_per_hour": 0.1,
                        "source": "poll",
                    }
                    for i, p in enumerate([1.2, 1.1, 1.4, 1.0, 0.9, 1.1, 1.3, 1.1])
                ],
            },
            "/v1/costs?by=user": {
                "by": "user",
                "since": None,
                "rows": [
                    {"key": 1000, "name": "ana", "amount": 12.5, "amount_micros": 12_500_000},
                    {"key": 1001, "name": "bo", "amount": 3.25, "amount_micros": 3_250_000},
                ],
                "total": 15.75,
                "currency": "USD",
            },
            "/v1/credits": {
                "pools": [
                    {
                        "id": 1,
                        "name": "nsf-aws",
                        "cloud": "aws",
                        "account": None,
                        "region": None,
                        "state": "active",
                        "amount": 5000.0,
                        "spent": 800.0,
                        "balance": 4200.0,
                        "balance_micros": 4_200_000_000,
                        "starts_at": "2026-01-01T00:00:00+00:00",
                        "expires_at": "2027-06-30T00:00:00+00:00",
                        "burn_per_hour": 1.75,
                        "projected_run_out": "2027-01-30T12:00:00+00:00",
                        "runs_out_before_expiry": True,
                        "unused_at_expiry": 0.0,
                    },
                ],
                "cash": {"spent": 10.0, "burn_per_hour": 0.25},
                "at": "2026-11-22T13:00:00+00:00",
            },
        }
    )
    return fake


async def settle(pilot: Pilot[Any], condition: Callable[[], object], within: float = 20.0) -> None:
    """Let the app run until `condition` holds: a bounded wait on real I/O, never an ordering
    sleep. Fails the test when it never does."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"the dashboard never reached the expected state in {within}s")
        await pilot.pause(0.05)
