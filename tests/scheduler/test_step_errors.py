"""An unexpected exception in one job's step (not a provider error) is retried a capped number
of times, then fails the job with the error, its process killed and its instances given back;
it used to raise on every pass and leave the job stuck in its state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from skyd.identity import Caller
from skyd.model import JobState
from skyd.runner.process import read_status
from skyd.runner.remote_procs import group_alive
from skyd.scheduler.driver import JobScheduler
from skyd.scheduler.step_errors import STEP_ERROR_TRIES
from skyd.store import Store
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store
from skyd.store.records import JobRecord
from skyd.testing.daemon import settings_for_tests
from skyd.testing.scheduler_world import one_pass, scheduler_world, submit_yaml

WAIT_LIMIT_S = 30.0  # the job's process is real: this only bounds how long a test waits


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[JobScheduler, Store]]:
    settings = settings_for_tests(tmp_path)
    settings.local.cancel_grace_seconds = 0.5
    async with scheduler_world(settings) as world:
        yield world


def submit(scheduler: JobScheduler, run: str) -> JobRecord:
    return submit_yaml(scheduler, f"name: t\nrun: {run}\n")


async def passes_until(
    scheduler: JobScheduler, store: Store, job_id: int, states: tuple[JobState, ...]
) -> JobRecord:
    """Run scheduler passes (each step to its end) until the job is in one of `states`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_LIMIT_S
    while True:
        await one_pass(scheduler)
        job = job_store.get_job(store, job_id)
        if job.state in states:
            return job
        if job.state.is_terminal or loop.time() > deadline:
            raise AssertionError(f"job {job_id} is {job.state}: {job.reason}")
        await asyncio.sleep(0.02)  # the job's real process moves between passes


async def running_sleep(scheduler: JobScheduler, store: Store) -> tuple[JobRecord, int]:
    """A job sleeping for ten minutes, RUNNING, and its live process group."""
    job = submit(scheduler, "sleep 600")
    job = await passes_until(scheduler, store, job.id, (JobState.RUNNING,))
    pgid = read_status(scheduler.attempt_dir(job)).pid
    assert pgid is not None and group_alive(pgid)
    return job, pgid


def step_errors(store: Store, job_id: int) -> list[str]:
    return [e.reason for e in job_store.job_events(store, job_id) if e.kind == "step_error"]


async def test_a_running_jobs_step_that_keeps_raising_fails_it_and_kills_its_process(
    world: tuple[JobScheduler, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler, store = world
    job, pgid = await running_sleep(scheduler, store)

    async def corrupt_status(job: JobRecord) -> None:
        raise ValueError("status.json: Expecting value: line 1 column 1 (char 0)")

    monkeypatch.setattr(scheduler.processes, "status", corrupt_status)
    job = await passes_until(scheduler, store, job.id, (JobState.FAILED,))
    assert job.reason is not None
    assert "internal error in the RUNNING step" in job.reason
    assert "ValueError: status.json: Expecting value" in job.reason
    retries = step_errors(store, job.id)
    assert len(retries) == STEP_ERROR_TRIES  # the notes before, and the failure itself
    assert "will retry (1 of" in retries[0]
    assert not group_alive(pgid)  # its process was killed
    left = [
        i
        for i in instance_store.instances_for_job(store, job.id)
        if i.state in instance_store.ACTIVE_INSTANCE_STATES
    ]
    assert left == []  # and its instances given back


async def test_a_waiting_jobs_step_that_keeps_raising_fails_it_without_launching(
    world: tuple[JobScheduler, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler, store = world

    def broken_select(*_args: object, **_kwargs: object) -> None:
        raise KeyError("offers")

    monkeypatch.setattr(scheduler.selector, "select", broken_select)
    job = submit(scheduler, "echo hi")
    job = await passes_until(scheduler, store, job.id, (JobState.FAILED,))
    assert job.reason is not None and "PENDING step: KeyError: 'offers'" in job.reason
    assert job.attempt == 0
    assert instance_store.instances_for_job(store, job.id) == []


async def test_a_step_that_raises_fewer_times_than_the_cap_lets_the_job_finish(
    world: tuple[JobScheduler, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler, store = world
    select = scheduler.selector.select
    raised: list[int] = []

    def flaky_select(*args: object, **kwargs: object) -> object:
        if len(raised) < STEP_ERROR_TRIES - 1:
            raised.append(1)
            raise RuntimeError("flaky")
        return select(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scheduler.selector, "select", flaky_select)
    job = submit(scheduler, "echo hi")
    job = await passes_until(scheduler, store, job.id, (JobState.SUCCEEDED,))
    assert len(step_errors(store, job.id)) == STEP_ERROR_TRIES - 1


async def test_a_cancel_whose_step_keeps_raising_still_ends_the_job_cancelled(
    world: tuple[JobScheduler, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler, store = world
    job, pgid = await running_sleep(scheduler, store)

    async def broken_finish(job: JobRecord) -> None:
        raise ValueError("the cancel step's own bug")

    monkeypatch.setattr(scheduler.cancels, "finish", broken_finish)
    answer = await scheduler.cancel(job.id, Caller(job.owner_uid, False), wait=False)
    assert answer.cancelling
    job = await passes_until(scheduler, store, job.id, (JobState.CANCELLED,))
    assert job.reason is not None
    assert job.reason.startswith(f"cancelled by {answer.cancel_requested_by}; ")
    assert "internal error in the RUNNING step: ValueError: the cancel step's own bug" in job.reason
    assert len(step_errors(store, job.id)) == STEP_ERROR_TRIES
    assert not group_alive(pgid)  # its process was killed all the same
    active = instance_store.ACTIVE_INSTANCE_STATES
    assert not [i for i in instance_store.instances_for_job(store, job.id) if i.state in active]
