"""The planner prices moving a running job with the changeover the spot policy plans with:
measured of the launches recorded in the store (PROVISIONING to RUNNING) on the clouds the
job may run on, the configured figure a floor; and the job's events say which it used.

Before, the planner charged a move the configured 0.2 h whatever launches really took, and
proposed moves that slow launches made not worth it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from skyd.model import JobState
from skyd.scheduler.planner import Planner
from skyd.scheduler.service import Caller
from skyd.spec import parse_task
from skyd.store import Store
from skyd.store import jobs as job_store
from skyd.store.records import EventRecord
from tests.scheduler.aws_scheduler import aws_scheduler
from tests.scheduler.launch_history import History

TASK = """\
name: train
resources:
  cloud: aws
  region: us-east-1
  accelerators: V100:1
  use_spot: true
estimated_runtime: 10h
migrate: true
run: python train.py
"""
CONFIGURED_H = 0.2  # the planner's default, as [recovery] changeover_hours
SLOW_LAUNCH_S = 7200.0
PRICE_RISE = 1.5  # what the running job's zone comes to cost, times what it cost at start


async def _moves_after_price_rise(
    store: Store, tmp_path: Path, launches: dict[str, float]
) -> tuple[list[EventRecord], dict[str, Any]]:
    """A `migrate: true` job runs where the planner placed it; its zone's spot price then
    rises by PRICE_RISE. The planner's move events for it, and where it runs."""
    scheduler, market, bus, clock = aws_scheduler(store, tmp_path)
    planner = Planner(
        store=store,
        bus=bus,
        clock=clock,
        decide=scheduler.decide,
        context=scheduler.placement_context,
        changeover_hours=CONFIGURED_H,
        offer_of=lambda p: market.catalog.offer_by_key(str(p.get("offer_key"))),
    )
    scheduler.planner = planner
    for cloud, seconds in launches.items():
        History(store).ran(cloud, clock.now() - 86_400.0, seconds)
    job = scheduler.submit(parse_task(TASK), caller=Caller(0, True), base_dir="/tmp")
    await planner.replan_once()
    placed = planner.planned[job.id]
    job_store.update_job_fields(store, job.id, placement_json=json.dumps(placed))
    now = clock.now()
    for state in (JobState.PROVISIONING, JobState.SETTING_UP, JobState.RUNNING):
        job_store.transition(store, job.id, state, now=now, reason="test", started_at=now)
    offer = market.catalog.offer_by_key(str(placed["offer_key"]))
    assert offer is not None and offer.spot_price_micros is not None
    market.set_spot_price(offer.key, round(offer.spot_price_micros * PRICE_RISE))
    await planner.replan_once()
    await planner.replan_once()  # said once, not at every pass
    moves = [e for e in job_store.job_events(store, job.id) if e.kind.startswith("migration_")]
    assert job_store.get_job(store, job.id).state == JobState.RUNNING  # never moved by a plan
    return moves, placed


async def test_with_no_launch_measured_a_move_costs_the_configured_changeover(
    store: Store, tmp_path: Path
) -> None:
    # a slow launch on a cloud the job may not run on does not count
    moves, placed = await _moves_after_price_rise(store, tmp_path, {"gcp": SLOW_LAUNCH_S})
    assert [e.kind for e in moves] == ["migration_proposed"]
    proposal = moves[0]
    assert proposal.data["to"] != placed["key"]
    assert "; changeover 0.20 h (configured; no launch measured yet); " in proposal.reason
    assert proposal.data["changeover_figures"]["hours"] == CONFIGURED_H
    # one changeover at the job's price now: the risen spot price
    hourly = placed["hourly_price"] * PRICE_RISE
    assert proposal.data["move_cost"] == pytest.approx(hourly * CONFIGURED_H, abs=1e-5)


async def test_slow_launches_on_its_cloud_make_the_same_move_not_worth_it(
    store: Store, tmp_path: Path
) -> None:
    moves, placed = await _moves_after_price_rise(store, tmp_path, {"aws": SLOW_LAUNCH_S})
    # the saving the configured 0.2 h changeover found worth a move now declines it
    assert [e.kind for e in moves] == ["migration_declined"]
    declined = moves[0]
    measured_h = (SLOW_LAUNCH_S + 5.0) / 3600.0  # aws syncs checkpoints over SSH: +10 s / 2
    assert declined.data["changeover_figures"]["hours"] == pytest.approx(measured_h, abs=1e-6)
    text = (
        "changeover 2.00 h (p90 of 1 launch + 5 s since the last checkpoint sync;"
        " configured 0.20 h)"
    )
    assert declined.data["changeover"] == text
    assert declined.reason.startswith(f"staying on {placed['key']}: moving to ")
    assert declined.reason.endswith(f"; {text}")
    hourly = placed["hourly_price"] * PRICE_RISE
    assert declined.data["move_cost"] == pytest.approx(hourly * measured_h, abs=1e-5)
    # the saving paid for the configured changeover, not for the measured one
    assert hourly * CONFIGURED_H < declined.data["saving"] < declined.data["move_cost"]
