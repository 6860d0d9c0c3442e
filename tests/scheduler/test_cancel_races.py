"""A cancel that meets the job's own end, a launch in flight, another cancel or a spent budget:
the job ends in exactly one terminal state, its VM is given back and charged once for every
second of its life, nothing is killed or started after the cancel settled it, and the stored
request no longer lists the job as being cancelled."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import NamedTuple

import pytest

from skyd.accounting.accrual import to_ms
from skyd.clock import VirtualClock
from skyd.identity import Caller
from skyd.model import TERMINAL_STATES, Instance, JobState, LaunchRequest
from skyd.scheduler.driver import JobScheduler
from skyd.scheduler.interfaces import NoBudgets
from skyd.spec import TaskSpec, parse_task
from skyd.store import Store, open_store
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store
from skyd.store.records import EventRecord, JobRecord
from skyd.testing.memory_cloud import MemoryCloud
from tests.scheduler.test_give_back_across_kill import (
    START,
    DyingCloud,
    _books,
    _running_job,
    _scheduler,
    _settle,
    still_running,
)


class World(NamedTuple):
    clock: VirtualClock
    cloud: DyingCloud
    store: Store
    scheduler: JobScheduler


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A scheduler on a virtual clock, over a cloud whose VMs can be lost; the store closed."""
    clock = VirtualClock(START)
    cloud = DyingCloud(clock)
    store = open_store(tmp_path / "state")
    try:
        yield World(clock, cloud, store, _scheduler(tmp_path, store, clock, cloud))
    finally:
        store.close()


ADMIN = Caller(0, True, "alice")
RESTARTS_ONCE = "name: r\njob_recovery:\n  max_restarts_on_errors: 1\nrun: exit 1\n"


def _run_ended(scheduler: JobScheduler, job_id: int, phase: str, run_exit: int | None) -> None:
    """The job's process records its end now (`done`: it exited; `killed`: a SIGTERM got it)."""
    job = job_store.get_job(scheduler.store, job_id)
    status = {"phase": phase, "setup_exit": 0, "run_exit": run_exit, "pid": None}
    status |= {"run_started_at": START, "ended_at": scheduler.clock.now()}
    (scheduler.processes.attempt_dir(job) / "status.json").write_text(json.dumps(status))


def _kills(scheduler: JobScheduler, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The grace of every kill sent to the job's processes (0.0: only a look, nothing to stop)."""
    graces: list[float] = []
    real = scheduler.processes.kill

    async def kill(job: JobRecord, grace: float) -> None:
        graces.append(grace)
        await real(job, grace)

    monkeypatch.setattr(scheduler.processes, "kill", kill)
    return graces


def _charged_once(store: Store, job_id: int) -> None:
    """The job's one VM's ledger rows cover its life from launch to its recorded end, each
    second once (no gap, no overlap)."""
    (row,) = instance_store.instances_for_job(store, job_id)
    spans = store.conn.execute(
        "SELECT start_ms, end_ms FROM ledger WHERE instance_id = ? ORDER BY start_ms",
        (row.instance_id,),
    ).fetchall()
    assert row.state == "TERMINATED" and row.ended_at is not None
    life = (to_ms(row.launched_at), to_ms(row.ended_at))
    if life[0] == life[1]:
        assert spans == []  # given back at the instant it was launched: nothing to charge
        return
    assert (spans[0][0], spans[-1][1]) == life, spans
    assert all(a[1] == b[0] for a, b in pairwise(spans)), spans


def _terminal(events: list[EventRecord]) -> list[str | None]:
    return [e.state for e in events if e.state in {s.value for s in TERMINAL_STATES}]


@pytest.mark.parametrize(
    ("task", "run_exit", "expected"),
    [
        (None, 0, JobState.SUCCEEDED),
        (None, 1, JobState.FAILED),  # no restart left: its own failure stands
        (RESTARTS_ONCE, 1, JobState.CANCELLED),  # it would run again: the cancel stops that
    ],
    ids=["exit-0", "exit-1", "exit-1-restart-left"],
)
async def test_a_run_that_ends_after_its_cancel_is_stored_keeps_its_own_outcome(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    task: str | None,
    run_exit: int,
    expected: JobState,
) -> None:
    clock, cloud, store, scheduler = world
    scheduler.accountant = books = _books(store, clock)
    job_id, vm = await _running_job(scheduler, cloud, *([task] if task else []))
    still_running(scheduler, job_id)
    kills = _kills(scheduler, monkeypatch)
    await clock.advance(60.0)
    books.accrue(clock.now())
    answer = await scheduler.cancel(job_id, ADMIN, wait=False)
    # the run exits by itself now: the cancel's step has not looked yet
    _run_ended(scheduler, job_id, "done", run_exit)
    await clock.advance(5.0)
    await _settle(scheduler)
    await clock.advance(30.0)
    await _settle(scheduler)  # later passes: nothing more for this job
    books.accrue(clock.now())
    job = job_store.get_job(store, job_id)
    events = job_store.job_events(store, job_id)
    left = job_store.cancelling_jobs(store)
    _charged_once(store, job_id)
    (row,) = instance_store.instances_for_job(store, job_id)
    assert (answer.state, answer.cancelling) == (JobState.RUNNING, True)
    assert job.state == expected, [(e.kind, e.state, e.reason) for e in events]
    assert _terminal(events) == [expected.value]
    (final,) = [e for e in events if e.state == expected.value]
    if expected == JobState.CANCELLED:
        assert job.reason == "cancelled by alice"
        assert kills == [scheduler.settings.local.cancel_grace_seconds]
        assert "cancel_too_late" not in final.data
    else:
        assert job.exit_code == run_exit
        assert job.reason is not None and "the cancel asked by alice came too late" in job.reason
        assert final.data["cancel_too_late"] == "alice"
        assert kills == [0.0]  # nothing was left to SIGTERM
    assert [e.kind for e in events].count("cancel_requested") == 1
    assert not job.cancelling and left == []
    assert cloud.state_of(vm).value == "TERMINATED"
    assert (row.state, row.ended_at) == ("TERMINATED", START + 65.0)
    assert len([c for c in cloud.calls if c[0] == "terminate"]) == 1


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ("done", JobState.SUCCEEDED),  # it exited just before the SIGTERM, which found nothing
        ("killed", JobState.CANCELLED),  # the SIGTERM reached it (its exit in the grace too)
    ],
)
async def test_a_run_that_ends_as_the_kill_comes_is_judged_by_what_its_runner_recorded(
    world: World, monkeypatch: pytest.MonkeyPatch, found: str, expected: JobState
) -> None:
    _clock, cloud, store, scheduler = world
    job_id, vm = await _running_job(scheduler, cloud)
    still_running(scheduler, job_id)
    real = scheduler.processes.kill
    graces: list[float] = []

    async def kill(job: JobRecord, grace: float) -> None:
        graces.append(grace)
        if grace:
            _run_ended(scheduler, job_id, found, 0)
        await real(job, grace)

    monkeypatch.setattr(scheduler.processes, "kill", kill)
    await scheduler.cancel(job_id, ADMIN, wait=True)
    await _settle(scheduler)
    job = job_store.get_job(store, job_id)
    events = job_store.job_events(store, job_id)
    assert job.state == expected and _terminal(events) == [expected.value]
    assert graces == [scheduler.settings.local.cancel_grace_seconds]  # one kill, never two
    assert ("came too late" in (job.reason or "")) == (expected == JobState.SUCCEEDED)
    assert cloud.state_of(vm).value == "TERMINATED"


async def test_a_cancel_stored_while_the_watch_looks_at_the_ended_run_says_it_came_too_late(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watch step holds the job and finds the run ended; the cancel stored meanwhile only
    waits: the job SUCCEEDED (saying the cancel came too late), nothing is killed for it."""
    _clock, cloud, store, scheduler = world
    job_id, vm = await _running_job(scheduler, cloud)  # its run exited 0
    kills = _kills(scheduler, monkeypatch)
    looking, go_on = asyncio.Event(), asyncio.Event()
    real = scheduler.processes.status

    async def status(job: JobRecord) -> object:
        looking.set()
        await go_on.wait()
        return await real(job)

    monkeypatch.setattr(scheduler.processes, "status", status)
    await scheduler.reconcile_once()  # the watch step starts
    await looking.wait()
    answer = await scheduler.cancel(job_id, ADMIN, wait=False)
    go_on.set()
    await _settle(scheduler)
    job = job_store.get_job(store, job_id)
    events = job_store.job_events(store, job_id)
    left = job_store.cancelling_jobs(store)
    assert answer.cancelling
    assert job.state == JobState.SUCCEEDED and _terminal(events) == ["SUCCEEDED"]
    assert job.reason is not None and "the cancel asked by alice came too late" in job.reason
    assert kills == [0.0] and left == []
    assert len([c for c in cloud.calls if c[0] == "terminate"]) == 1
    assert cloud.state_of(vm).value == "TERMINATED"


@dataclass
class SlowLaunchCloud(MemoryCloud):
    """A launch that returns only once the test lets it (the cloud is still creating it)."""

    launching: asyncio.Event = field(default_factory=asyncio.Event)
    go_on: asyncio.Event = field(default_factory=asyncio.Event)

    async def launch(self, request: LaunchRequest) -> list[Instance]:
        self.launching.set()
        await self.go_on.wait()
        return await super().launch(request)


@pytest.mark.parametrize("wait", [False, True])
async def test_a_cancel_stored_while_the_launch_is_in_flight_gives_the_vm_back_unstarted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wait: bool
) -> None:
    clock = VirtualClock(START)
    cloud = SlowLaunchCloud(clock)
    store = open_store(tmp_path / "state")
    started: list[int] = []

    async def start(job: JobRecord, spec: TaskSpec, command: object) -> None:
        started.append(job.id)

    try:
        scheduler = _scheduler(tmp_path, store, clock, cloud)
        scheduler.accountant = books = _books(store, clock)
        monkeypatch.setattr(scheduler.processes, "start_local", start)
        monkeypatch.setattr(scheduler.processes, "start_remote", start)
        job = scheduler.submit(
            parse_task("name: gpu\nresources: {accelerators: T4}\nrun: echo hi\n"),
            caller=ADMIN,
            base_dir="/tmp",
        )
        await scheduler.reconcile_once()  # places it; the launch call is under way
        await cloud.launching.wait()
        cancel = asyncio.create_task(scheduler.cancel(job.id, ADMIN, wait=wait))
        await asyncio.sleep(0)  # the cancel is stored (a waiting one then waits for the job)
        assert job_store.get_job(store, job.id).cancelling
        await clock.advance(20.0)
        launch_step = scheduler.tasks.inflight[job.id]
        cloud.go_on.set()  # the launch returns: an instance exists
        await launch_step
        await clock.advance(30.0)
        answer = await cancel
        await _settle(scheduler)  # a cancel answered at once: the next pass gives it back
        books.accrue(clock.now())
        ended = job_store.get_job(store, job.id)
        events = job_store.job_events(store, job.id)
        (row,) = instance_store.instances_for_job(store, job.id)
        left = job_store.cancelling_jobs(store)
        _charged_once(store, job.id)
    finally:
        store.close()
    assert answer.state == (JobState.CANCELLED if wait else JobState.PROVISIONING)
    assert ended.state == JobState.CANCELLED and ended.reason == "cancelled by alice"
    assert _terminal(events) == ["CANCELLED"] and left == []
    assert started == []  # its work never started after the cancel was stored
    assert [c[0] for c in cloud.calls].count("launch") == 1
    assert cloud.state_of(row.instance_id).value == "TERMINATED"
    assert row.state == "TERMINATED" and row.ended_at is not None


async def test_a_cancel_asked_again_or_after_the_end_asks_nothing_new(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second cancel while the kill goes on (at once, or waiting for the end) and a cancel of
    the ended job: each answers with the job as it is; one request, one kill, one end."""
    _clock, cloud, store, scheduler = world
    job_id, vm = await _running_job(scheduler, cloud)
    still_running(scheduler, job_id)
    graces: list[float] = []
    killing, go_on = asyncio.Event(), asyncio.Event()

    async def kill(job: JobRecord, grace: float) -> None:
        graces.append(grace)
        killing.set()
        await go_on.wait()  # the job takes its grace to stop
        _run_ended(scheduler, job_id, "killed", None)

    monkeypatch.setattr(scheduler.processes, "kill", kill)
    first = await scheduler.cancel(job_id, ADMIN, wait=False)
    await killing.wait()
    waiting = asyncio.create_task(scheduler.cancel(job_id, ADMIN, wait=True))
    again = await scheduler.cancel(job_id, Caller(0, True, "bob"), wait=False)
    await asyncio.sleep(0)
    assert not waiting.done()
    go_on.set()
    waited = await waiting
    await _settle(scheduler)
    before = job_store.job_events(store, job_id)
    late = [await scheduler.cancel(job_id, ADMIN, wait=w) for w in (False, True)]
    await _settle(scheduler)
    after = job_store.job_events(store, job_id)
    job = job_store.get_job(store, job_id)
    under_way = (JobState.RUNNING, True)
    assert (first.state, first.cancelling) == (again.state, again.cancelling) == under_way
    assert (waited.state, waited.cancelling) == (JobState.CANCELLED, False)
    assert [(j.state, j.cancelling) for j in late] == [(JobState.CANCELLED, False)] * 2
    assert job.reason == "cancelled by alice"  # the first request's, not bob's
    assert [e.kind for e in before].count("cancel_requested") == 1
    assert _terminal(before) == ["CANCELLED"]
    assert after == before  # the cancels of the ended job wrote nothing
    assert graces == [scheduler.settings.local.cancel_grace_seconds]
    assert len([c for c in cloud.calls if c[0] == "terminate"]) == 1
    assert cloud.state_of(vm).value == "TERMINATED"


async def test_a_cancel_of_a_job_that_ended_by_itself_changes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clock, cloud, store, scheduler = world
    job_id, _vm = await _running_job(scheduler, cloud)
    await _settle(scheduler)  # the watch finds it ended: SUCCEEDED
    kills = _kills(scheduler, monkeypatch)
    before = job_store.job_events(store, job_id)
    answers = [await scheduler.cancel(job_id, ADMIN, wait=w) for w in (False, True)]
    await _settle(scheduler)
    after = job_store.job_events(store, job_id)
    job = job_store.get_job(store, job_id)
    assert [(a.state, a.cancelling) for a in answers] == [(JobState.SUCCEEDED, False)] * 2
    assert job.state == JobState.SUCCEEDED and job.cancel_requested_by is None
    assert after == before and kills == []


class SpentBudget(NoBudgets):
    """A budget the job counts against is spent: the scheduler is to `action` it."""

    def __init__(self, job_id: int, action: str) -> None:
        self.actions_version = 1
        self.spent = [(job_id, action)]

    def running_over_budget(self) -> list[tuple[int, str]]:
        return self.spent


@pytest.mark.parametrize("action", ["stop", "hold"])
async def test_a_job_being_cancelled_is_not_stopped_by_a_spent_budget_too(
    world: World, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    """The pass after the cancel was answered checks budgets before the cancel's step runs:
    the job still ends CANCELLED, killed once, with no budget event."""
    _clock, cloud, store, scheduler = world
    job_id, vm = await _running_job(scheduler, cloud)
    still_running(scheduler, job_id)
    kills = _kills(scheduler, monkeypatch)
    await scheduler.cancel(job_id, ADMIN, wait=False)
    scheduler.accountant = SpentBudget(job_id, action)
    await scheduler.reconcile_once()
    await _settle(scheduler)
    job = job_store.get_job(store, job_id)
    events = job_store.job_events(store, job_id)
    assert job.state == JobState.CANCELLED and job.reason == "cancelled by alice"
    assert _terminal(events) == ["CANCELLED"]
    assert not [e for e in events if e.kind == "budget"]
    assert kills == [scheduler.settings.local.cancel_grace_seconds]
    assert cloud.state_of(vm).value == "TERMINATED"
