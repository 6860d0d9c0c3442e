"""A daemon killed while giving a finished job's VM back (#13, point 4): after the restart the
job keeps its real outcome and the termination is finished and recorded — the VM's end is
never read as a preemption (which blocked the job's region for 300 s and left it waiting).

The kill is played by the cloud's terminate raising a BaseException right before or right
after it did its work: nothing after that point of the step runs, as after a kill -9."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from skyd.accounting.accountant import Accountant
from skyd.accounting.accrual import to_ms
from skyd.accounting.settings import AccountingSettings
from skyd.catalog import Catalog
from skyd.clock import VirtualClock
from skyd.events import EventBus
from skyd.identity import Caller
from skyd.market.live import LiveMarket
from skyd.model import JobState, LaunchRequest
from skyd.providers.base import job_tags
from skyd.runner.process import ProcessRunner
from skyd.scheduler.driver import JobScheduler
from skyd.spec import parse_task
from skyd.store import Store, open_store
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store
from skyd.testing.daemon import settings_for_tests
from skyd.testing.memory_cloud import MEMORY_CLOUD, MemoryCloud

START = 1_800_000_000.0


class Killed(BaseException):
    """The daemon died here (not an Exception: no handler of the step's may catch it)."""


@dataclass
class DyingCloud(MemoryCloud):
    # "before" | "after" the terminate's work, "deleting": once the delete was accepted but
    # not done (the VM reported stopped meanwhile, as GCE shows one it deletes); "" never
    die: str = ""

    async def terminate(self, instance_ids: Sequence[str]) -> None:
        if self.die == "before":
            raise Killed()
        if self.die == "deleting":
            for iid in instance_ids:
                await self.stop([iid])
            raise Killed()
        await super().terminate(instance_ids)
        if self.die == "after":
            raise Killed()


def _scheduler(
    tmp_path: Path, store: Store, clock: VirtualClock, cloud: MemoryCloud
) -> JobScheduler:
    settings = settings_for_tests(tmp_path)
    return JobScheduler(
        store=store,
        bus=EventBus(),
        clock=clock,
        settings=settings,
        providers={MEMORY_CLOUD: cloud},
        runner=ProcessRunner(),
        market=LiveMarket(Catalog([]), {MEMORY_CLOUD: cloud}),
    )


async def _running_job(
    scheduler: JobScheduler, cloud: MemoryCloud, task: str = "name: done\nrun: echo hi\n"
) -> tuple[int, str]:
    """A job RUNNING on one memcloud VM whose run has just exited 0."""
    job = scheduler.submit(parse_task(task), caller=Caller(0, True), base_dir="/tmp")
    offer = cloud.offerings[0]
    token = f"skyd-{job.id}-1"
    placement: dict[str, object] = {
        "provider": MEMORY_CLOUD,
        "cloud": MEMORY_CLOUD,
        "region": offer.region,
    }
    placement |= {"zone": offer.zone, "instance_type": offer.instance_type, "spot": False}
    job = scheduler.journal.move(
        job.id,
        JobState.PROVISIONING,
        reason="placed",
        attempt=1,
        placement_json=json.dumps(placement),
    )
    (vm,) = await cloud.launch(
        LaunchRequest(
            job.id, 1, token, offer, False, tags=job_tags(scheduler.daemon_id, job.id, 1, token)
        )
    )
    rows = scheduler.journal.instance_rows([vm], job=job, token=token, hourly_micros=500_000)
    scheduler.journal.move(job.id, JobState.SETTING_UP, reason="launched", also=rows)
    job = scheduler.journal.move(job.id, JobState.RUNNING, reason="run started")
    attempt = scheduler.processes.attempt_dir(job)
    attempt.mkdir(parents=True, exist_ok=True)
    done = {"phase": "done", "setup_exit": 0, "run_exit": 0, "ended_at": START, "pid": None}
    (attempt / "status.json").write_text(json.dumps(done))
    return job.id, vm.instance_id


def still_running(scheduler: JobScheduler, job_id: int) -> None:
    """The job's process is running (not ended yet; nothing to kill in these tests)."""
    job = job_store.get_job(scheduler.store, job_id)
    status = scheduler.processes.attempt_dir(job) / "status.json"
    status.write_text(json.dumps({"phase": "run", "setup_exit": 0, "pid": None}))


async def _settle(scheduler: JobScheduler) -> None:
    """What a restarted daemon does first (reconcile), then a few passes to the end."""
    await scheduler.reconcile_now()
    for _ in range(3):
        await scheduler.reconcile_once()
        # the pass's steps and anything they started (the sweep of marked terminations)
        await asyncio.gather(*(t for t in asyncio.all_tasks() if t is not asyncio.current_task()))


@pytest.mark.parametrize("die", ["after", "before"])
@pytest.mark.parametrize("action", ["finished", "cancelled"])
async def test_a_kill_while_giving_the_vm_back_keeps_the_outcome(
    tmp_path: Path, die: str, action: str
) -> None:
    clock = VirtualClock(START)
    cloud = DyingCloud(clock)
    store = open_store(tmp_path / "state")
    try:
        first = _scheduler(tmp_path, store, clock, cloud)
        job_id, vm = await _running_job(first, cloud)
        if action == "cancelled":  # cancelled while it runs (a run that ended stays SUCCEEDED)
            still_running(first, job_id)
        cloud.die = die
        with pytest.raises(Killed):
            if action == "finished":
                await first.attempts.watch(job_store.get_job(store, job_id))
            else:
                await first.cancel(job_id, Caller(0, True))
        assert (cloud.state_of(vm).value == "TERMINATED") == (die == "after")

        cloud.die = ""
        await clock.advance(30.0)  # the daemon is down for a while, then starts again
        restarted = _scheduler(tmp_path, store, clock, cloud)
        await _settle(restarted)
        job = job_store.get_job(store, job_id)
        events = job_store.job_events(store, job_id)
        (row,) = instance_store.instances_for_job(store, job_id)
        blocked = restarted.blocks.active(clock.now())
    finally:
        store.close()
    expected = JobState.SUCCEEDED if action == "finished" else JobState.CANCELLED
    assert job.state == expected, [(e.kind, e.state, e.reason) for e in events]
    assert job.preemptions == 0 and not [e for e in events if e.kind == "preempted"]
    assert blocked == frozenset()
    # the VM is gone, its end recorded once the cloud confirmed it (after the restart)
    assert cloud.state_of(vm).value == "TERMINATED"
    assert (row.state, row.ended_at) == ("TERMINATED", START + 30.0)
    assert not [c for c in cloud.calls if c[0] == "launch"][1:]  # never launched again


async def test_ledger_seconds_equal_the_life_of_a_vm_given_back_across_a_kill(
    tmp_path: Path,
) -> None:
    """Killed once the cloud accepted the delete: the restarted daemon must not take the VM's
    stopped look (mid-delete) for a stopped VM and charge it at the stopped rate; it charges
    it as running until the end is confirmed, so the ledger's seconds are its whole life."""
    clock = VirtualClock(START)
    cloud = DyingCloud(clock)
    store = open_store(tmp_path / "state")
    try:
        first = _scheduler(tmp_path, store, clock, cloud)
        first.accountant = books = _books(store, clock)
        job_id, vm = await _running_job(first, cloud)
        await clock.advance(60.0)
        books.accrue(clock.now())
        cloud.die = "deleting"
        with pytest.raises(Killed):
            await first.attempts.watch(job_store.get_job(store, job_id))

        cloud.die = ""
        await clock.advance(30.0)
        restarted = _scheduler(tmp_path, store, clock, cloud)
        restarted.accountant = books = _books(store, clock)
        await restarted.reconcile_now()
        books.accrue(clock.now())
        await clock.advance(10.0)
        await _settle(restarted)
        books.accrue(clock.now())
        (row,) = instance_store.instances_for_job(store, job_id)
        charged = store.conn.execute(
            "SELECT SUM(end_ms - start_ms) FROM ledger WHERE instance_id = ?", (vm,)
        ).fetchone()[0]
        job = job_store.get_job(store, job_id)
    finally:
        store.close()
    assert job.state == JobState.SUCCEEDED
    assert row.state == "TERMINATED" and row.ended_at is not None
    assert charged == to_ms(row.ended_at) - to_ms(row.launched_at) == 100_000


def _books(store: Store, clock: VirtualClock) -> Accountant:
    return Accountant(store=store, clock=clock, bus=EventBus(), settings=AccountingSettings())


async def test_a_terminate_that_fails_is_retried_with_backoff_not_every_pass(
    tmp_path: Path,
) -> None:
    """The job's outcome stands (the intent is on record); the termination is tried again
    after 2 s, then 4 s, … of the injected clock, never at every pass, until the cloud takes it."""
    clock = VirtualClock(START)
    cloud = DyingCloud(clock)
    store = open_store(tmp_path / "state")
    try:
        scheduler = _scheduler(tmp_path, store, clock, cloud)
        job_id, vm = await _running_job(scheduler, cloud)
        still_running(scheduler, job_id)
        cloud.failing.add("terminate")
        await scheduler.cancel(job_id, Caller(0, True))
        assert job_store.get_job(store, job_id).state == JobState.CANCELLED
        tries = [c for c in cloud.calls if c[0] == "terminate"]
        await _settle(scheduler)  # same instant: no new try
        assert [c for c in cloud.calls if c[0] == "terminate"] == tries
        await clock.advance(2.0)
        await _settle(scheduler)  # second failure: next try 4 s later
        assert len([c for c in cloud.calls if c[0] == "terminate"]) == len(tries) + 1
        await clock.advance(2.0)
        await _settle(scheduler)
        assert len([c for c in cloud.calls if c[0] == "terminate"]) == len(tries) + 1
        cloud.failing.discard("terminate")
        await clock.advance(2.0)
        await _settle(scheduler)
        (row,) = instance_store.instances_for_job(store, job_id)
    finally:
        store.close()
    assert cloud.state_of(vm).value == "TERMINATED"
    assert (row.state, row.ended_at) == ("TERMINATED", START + 6.0)
