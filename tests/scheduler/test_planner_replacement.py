"""Re-optimization: a waiting job is re-placed when its offering's price jumps or its zone is
blocked, and not moved for a near-equal saving (hysteresis)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from skyd.market.live import LiveMarket
from skyd.model import JobState
from skyd.optimizer import CandidateView
from skyd.scheduler.placement import job_filters
from skyd.scheduler.planner import Planner
from skyd.scheduler.service import Caller, JobScheduler
from skyd.spec import parse_task
from skyd.store import Store
from skyd.store import jobs as job_store
from tests.scheduler.aws_scheduler import aws_scheduler

TASK = """\
name: train
resources:
  cloud: aws
  region: us-east-1
  accelerators: V100:1
  use_spot: true
estimated_runtime: 2h
run: python train.py
"""


def _scheduler(store: Store, tmp_path: Path) -> tuple[JobScheduler, Planner, LiveMarket]:
    scheduler, market, bus, clock = aws_scheduler(store, tmp_path)
    planner = Planner(
        store=store,
        bus=bus,
        clock=clock,
        decide=scheduler.decide,
        context=scheduler.placement_context,
    )
    scheduler.planner = planner
    return scheduler, planner, market


def _placed_key(store: Store, job_id: int, planner: Planner) -> str:
    placement = planner.planned.get(job_id) or job_store.get_job(store, job_id).placement
    assert placement is not None
    return str(placement["offer_key"])


async def test_price_jump_and_blocked_zone_move_a_waiting_job(store: Store, tmp_path: Path) -> None:
    scheduler, planner, market = _scheduler(store, tmp_path)
    job = scheduler.submit(parse_task(TASK), caller=Caller(0, True), base_dir="/tmp")
    await planner.replan_once()
    first = _placed_key(store, job.id, planner)
    assert first.startswith("aws/us-east-1/") and first.endswith("/p3.2xlarge")

    # its spot price triples: the job moves to the next cheapest zone
    offer = market.catalog.offer_by_key(first)
    assert offer is not None and offer.spot_price_micros is not None
    market.set_spot_price(first, offer.spot_price_micros * 3)
    await planner.replan_once()
    second = _placed_key(store, job.id, planner)
    assert second != first and second.endswith("/p3.2xlarge")
    # the first plan lives in memory; the re-placement is recorded
    events = [e for e in job_store.job_events(store, job.id) if e.kind == "placement"]
    assert len(events) == 1 and "re-placed" in events[-1].reason and first in events[-1].reason

    # its zone is blocked after a failed launch: it moves again
    zone_scope = "/".join(second.split("/")[:3])
    scheduler.blocks.until[zone_scope] = scheduler.clock.now() + 600
    await planner.replan_once()
    third = _placed_key(store, job.id, planner)
    assert not third.startswith(zone_scope + "/")
    assert job_store.get_job(store, job.id).state == JobState.PENDING


async def test_near_equal_saving_does_not_move_a_job(store: Store, tmp_path: Path) -> None:
    scheduler, planner, market = _scheduler(store, tmp_path)
    job = scheduler.submit(parse_task(TASK), caller=Caller(0, True), base_dir="/tmp")
    await planner.replan_once()
    first = _placed_key(store, job.id, planner)
    offer = market.catalog.offer_by_key(first)
    assert offer is not None and offer.spot_price_micros is not None
    # another zone becomes 1 % cheaper than the chosen one: within the hysteresis margin
    filters = job_filters(parse_task(TASK), market)
    rival = next(c.offer for c in market.catalog.query(filters[0]) if c.offer.key != first)
    market.set_spot_price(rival.key, int(offer.spot_price_micros * 0.99))
    await planner.replan_once()
    assert _placed_key(store, job.id, planner) == first
    placements = [e for e in job_store.job_events(store, job.id) if e.kind == "placement"]
    assert placements == []  # it never moved


def test_an_unfinished_job_past_its_estimate_is_never_treated_as_done() -> None:
    from skyd.scheduler.recovery import policy_state

    views = _views_one_spot_one_on_demand()
    state = policy_state(
        views=views,
        unavailable=frozenset(),
        job_hours=1.0,
        done_hours=1.2,  # ran longer than the user estimated, and is still not finished
        deadline_hours=10.0,
        elapsed_hours=3.0,
        changeover_hours=0.1,
        step_hours=0.01,
        checkpoint_region=None,
    )
    assert state is not None
    assert not state.finished and state.remaining_hours > 0


def _views_one_spot_one_on_demand() -> list[CandidateView]:
    from skyd.model import Candidate, Offer

    offer = Offer("sim", "r1", "a", "p3.2xlarge", "V100", 1, 8, 61, 3_000_000, 1_000_000)
    return [
        CandidateView(Candidate(offer, True, 1_000_000), 0, 1_000_000, 1.0, 1_000_000, 0.1, None),
        CandidateView(Candidate(offer, False, 3_000_000), 0, 3_000_000, 1.0, 3_000_000, 0.0, None),
    ]


async def test_a_running_job_that_allows_it_gets_a_migration_proposal(
    store: Store, tmp_path: Path
) -> None:
    scheduler, planner, market = _scheduler(store, tmp_path)
    planner._offer_of = lambda p: market.catalog.offer_by_key(str(p.get("offer_key")))
    job = scheduler.submit(
        parse_task(TASK.replace("estimated_runtime: 2h", "estimated_runtime: 10h\nmigrate: true")),
        caller=Caller(0, True),
        base_dir="/tmp",
    )
    await planner.replan_once()
    placed = planner.planned.get(job.id)
    assert placed is not None
    job_store.update_job_fields(store, job.id, placement_json=json.dumps(placed))
    now = scheduler.clock.now()
    for state in (JobState.PROVISIONING, JobState.SETTING_UP, JobState.RUNNING):
        job_store.transition(store, job.id, state, now=now, reason="test", started_at=now)
    offer = market.catalog.offer_by_key(str(placed["offer_key"]))
    assert offer is not None and offer.spot_price_micros is not None
    # a near-equal saving proposes nothing (the move's cost and the hysteresis)
    market.set_spot_price(offer.key, int(offer.spot_price_micros * 1.02))
    await planner.replan_once()
    kinds = [e.kind for e in job_store.job_events(store, job.id)]
    assert "migration_proposed" not in kinds
    # its zone gets four times dearer: moving the remaining 10 h is clearly worth it
    market.set_spot_price(offer.key, offer.spot_price_micros * 4)
    await planner.replan_once()
    proposals = [e for e in job_store.job_events(store, job.id) if e.kind == "migration_proposed"]
    assert len(proposals) == 1 and proposals[0].data["to"] != placed["key"]
    assert job_store.get_job(store, job.id).state == JobState.RUNNING  # only proposed


async def test_concurrent_submits_each_get_their_own_stored_job(
    store: Store, tmp_path: Path
) -> None:
    scheduler, _planner, _market = _scheduler(store, tmp_path)
    spec = parse_task(TASK)
    jobs = await asyncio.gather(
        *(
            scheduler.submit_grouped(spec, caller=Caller(0, True), base_dir="/tmp")
            for _ in range(25)
        )
    )
    ids = [job.id for job in jobs]
    assert len(set(ids)) == 25
    for job_id in ids:
        stored = job_store.get_job(store, job_id)
        assert stored.state == JobState.PENDING
        assert [e.kind for e in job_store.job_events(store, job_id)] == ["submitted"]


def test_the_last_spot_zone_from_a_placement_names_a_zone_the_policy_sees() -> None:
    from skyd.scheduler.recovery import RunningOn, policy_state

    views = _views_one_spot_one_on_demand()
    spot_record = {
        "cloud": "sim",
        "region": "r1",
        "zone": "a",
        "offer_key": "k",
        "hourly_price": 1.0,
        "spot": True,
    }
    last = RunningOn.of(spot_record)
    assert last is not None and last.spot_zone is not None
    state = policy_state(
        views=views,
        unavailable=frozenset(),
        job_hours=1.0,
        done_hours=0.2,
        deadline_hours=10.0,
        elapsed_hours=3.0,
        changeover_hours=0.1,
        step_hours=0.01,
        checkpoint_region="sim/r1",
        last_zone=last.spot_zone,
    )
    assert state is not None and state.last_zone == "sim/r1/a"
    # the policy finds it among its zones (a spike there is waited out by name)
    assert state.zone_market(state.last_zone) is not None
    on_demand = RunningOn.of({**spot_record, "spot": False})
    assert on_demand is not None and on_demand.spot_zone is None
