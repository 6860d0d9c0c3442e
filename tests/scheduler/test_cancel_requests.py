"""A cancel answered (stored) but not carried out when the daemon died: the restarted
scheduler cancels the job before anything else its state would do — a waiting job is never
placed, a running one's VM is given back and charged to its end."""

from __future__ import annotations

import asyncio
from pathlib import Path

from skyd.accounting.accrual import to_ms
from skyd.clock import VirtualClock
from skyd.identity import Caller
from skyd.model import JobState
from skyd.scheduler.driver import JobScheduler
from skyd.spec import parse_task
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store
from skyd.store import open_store
from tests.scheduler.test_give_back_across_kill import (
    START,
    DyingCloud,
    _books,
    _running_job,
    _scheduler,
    _settle,
    still_running,
)

ALICE = Caller(1000, False, "alice")


async def _die_after_answering(scheduler: JobScheduler) -> None:
    """The daemon dies right after the cancel's answer: its step never runs."""
    steps = list(scheduler.tasks.inflight.values())
    assert steps  # the answer left the kill to a step
    for task in steps:
        task.cancel()
    await asyncio.gather(*steps, return_exceptions=True)


async def test_a_waiting_job_whose_cancel_was_stored_is_cancelled_not_placed(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(START)
    cloud = DyingCloud(clock)
    store = open_store(tmp_path / "state")
    try:
        first = _scheduler(tmp_path, store, clock, cloud)
        job = first.submit(parse_task("run: echo hi\n"), caller=ALICE, base_dir="/tmp")
        answer = await first.cancel(job.id, ALICE, wait=False)
        await _die_after_answering(first)
        assert (answer.state, answer.cancelling) == (JobState.PENDING, True)

        restarted = _scheduler(tmp_path, store, clock, cloud)
        await _settle(restarted)
        ended = job_store.get_job(store, job.id)
        kinds = [e.kind for e in job_store.job_events(store, job.id)]
    finally:
        store.close()
    assert ended.state == JobState.CANCELLED and ended.reason == "cancelled by alice"
    assert not ended.cancelling
    assert kinds.count("cancel_requested") == 1
    assert [c for c in cloud.calls if c[0] == "launch"] == []  # never placed


async def test_a_running_job_whose_cancel_was_stored_gives_its_vm_back_charged_to_its_end(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(START)
    cloud = DyingCloud(clock)
    store = open_store(tmp_path / "state")
    try:
        first = _scheduler(tmp_path, store, clock, cloud)
        first.accountant = books = _books(store, clock)
        job_id, vm = await _running_job(first, cloud)
        still_running(first, job_id)  # its process is on the VM; nothing says it ended
        await clock.advance(60.0)
        books.accrue(clock.now())
        answer = await first.cancel(job_id, Caller(0, True), wait=False)
        await _die_after_answering(first)
        assert (answer.state, answer.cancelling) == (JobState.RUNNING, True)

        await clock.advance(30.0)  # down for a while, then started again
        restarted = _scheduler(tmp_path, store, clock, cloud)
        restarted.accountant = books = _books(store, clock)
        await _settle(restarted)
        books.accrue(clock.now())
        ended = job_store.get_job(store, job_id)
        (row,) = instance_store.instances_for_job(store, job_id)
        charged = store.conn.execute(
            "SELECT SUM(end_ms - start_ms) FROM ledger WHERE instance_id = ?", (vm,)
        ).fetchone()[0]
    finally:
        store.close()
    assert ended.state == JobState.CANCELLED, ended
    assert ended.attempt == 1 and not [c for c in cloud.calls if c[0] == "launch"][1:]
    assert cloud.state_of(vm).value == "TERMINATED"
    assert (row.state, row.ended_at) == ("TERMINATED", START + 90.0)
    assert charged == to_ms(START + 90.0) - to_ms(row.launched_at)
