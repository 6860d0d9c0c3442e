"""Shared pieces of the dashboard tests: the fake daemon's fixed data and a bounded wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from tui.fake_daemon import FakeDaemon, fake_job, fake_placement

# Sunday 2026-11-22 12:00:00 UTC: every timestamp of the fake's data is near it.
T0 = 1_795_348_800.0
NOW = T0 + 3_600.0


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
                    {
                        "name": "skyd-1",
                        "cloud": "aws",
                        "region": "us-east-1",
                        "status": "UP",
                        "up_seconds": 3540,
                        "idle_seconds": 0,
                        "autostop_minutes": 30,
                    },
                    {
                        "name": "skyd-3",
                        "cloud": "gcp",
                        "region": "us-central1",
                        "status": "STOPPED",
                        "up_seconds": 0,
                        "idle_seconds": 1800,
                        "autostop_minutes": None,
                    },
                ]
            },
            "/v1/prices": {
                "offers": [
                    {
                        "accelerator": "A100",
                        "cloud": "gcp",
                        "region": "us-central1",
                        "instance_type": "a2-highgpu-1g",
                        "spot": True,
                        "price": 1.1,
                        "availability": "high",
                        "offering": "gcp:a2-highgpu-1g:spot",
                    },
                    {
                        "accelerator": "A10G",
                        "cloud": "aws",
                        "region": "us-east-1",
                        "instance_type": "g5.xlarge",
                        "spot": False,
                        "price": 1.006,
                        "availability": "-",
                        "offering": "aws:g5.xlarge",
                    },
                ]
            },
            "/v1/prices/history?offering=gcp:a2-highgpu-1g:spot": {
                "points": [
                    {"at": T0 + i * 600, "price": p}
                    for i, p in enumerate([1.2, 1.1, 1.4, 1.0, 0.9, 1.1, 1.3, 1.1])
                ]
            },
            "/v1/costs?by=user": [
                {"key": 1000, "name": "ana", "amount": 12.5, "amount_micros": 12_500_000},
                {"key": 1001, "name": "bo", "amount": 3.25, "amount_micros": 3_250_000},
            ],
            "/v1/credits": {
                "pools": [
                    {
                        "id": 1,
                        "name": "nsf-aws",
                        "cloud": "aws",
                        "state": "active",
                        "balance": 4200.0,
                        "burn_per_hour": 1.75,
                        "projected_run_out": "2026-12-22T12:00:00+00:00",
                        "expires_at": "2027-06-30T00:00:00+00:00",
                    },
                ],
                "cash": {"spent": 10.0, "burn_per_hour": 0.0},
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
