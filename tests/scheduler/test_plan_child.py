"""The planner's own process: a plan made there is applied by the loop, a crash of it costs
no job and is followed by a new process, and it never outlives its daemon (kill -9)."""

from __future__ import annotations

import logging
import os
import select
from dataclasses import replace
from pathlib import Path

import pytest

from skyd.model import JobState
from skyd.optimizer import Quota, SolverLimits
from skyd.scheduler.plan_child import PlanWorld, ProviderShape
from skyd.scheduler.plan_process import ChildPlanner
from skyd.scheduler.planner import Planner
from skyd.scheduler.service import Caller, JobScheduler
from skyd.spec import parse_task
from skyd.store import Store
from skyd.store import jobs as job_store
from skyd.testing.daemon import DaemonProcess, wait_until
from skyd.testing.unix_http import request
from tests.scheduler.aws_scheduler import aws_scheduler

TASK = """\
name: train
resources:
  cloud: aws
  region: us-east-1
  accelerators: V100:1
estimated_runtime: 2h
run: python train.py
"""
# couples the waiting jobs: the pass solves the global model, not each job's own best
QUOTA = Quota("aws gpus", "aws", "gpus", 8)


def _planner(
    store: Store, tmp_path: Path, providers: dict[str, ProviderShape] | None = None
) -> tuple[JobScheduler, Planner, ChildPlanner]:
    scheduler, _, bus, clock = aws_scheduler(store, tmp_path)
    assert store.path is not None
    child = ChildPlanner(
        PlanWorld(
            db_path=store.path,
            catalog_dir=None,
            providers={"aws": ProviderShape()} if providers is None else providers,
            limits=SolverLimits(time_limit_seconds=2.0),
            changeover_hours=0.2,
        )
    )
    planner = Planner(
        store=store,
        bus=bus,
        clock=clock,
        decide=scheduler.decide,
        context=scheduler.placement_context,
        quotas=lambda: [QUOTA],
        backend=child,
    )
    scheduler.planner = planner
    return scheduler, planner, child


async def test_a_plan_made_in_the_planners_process_is_applied(store: Store, tmp_path: Path) -> None:
    scheduler, planner, child = _planner(store, tmp_path)
    try:
        job = scheduler.submit(parse_task(TASK), caller=Caller(0, True), base_dir="/tmp")
        result = await planner.replan_once()
        assert result is not None and result.coupled
        # solved in another process, applied here: the planner's memory has the placement
        assert child.pid is not None and child.pid != os.getpid()
        placed = planner.planned[job.id]
        assert str(placed["offer_key"]).startswith("aws/us-east-1")
        assert placed["instance_type"] == "p3.2xlarge" and placed["planned"] is True
        assert planner.global_solves == 1
        # and the scheduler launches from it
        assert scheduler.planned_placement(job_store.get_job(store, job.id)) == placed
    finally:
        await child.close()


async def test_a_new_world_is_planned_with_from_the_next_pass(store: Store, tmp_path: Path) -> None:
    """What placement sees changed (a lab cluster read again): the next pass runs in a new
    process built from the new world."""
    scheduler, planner, child = _planner(store, tmp_path, providers={})
    try:
        job = scheduler.submit(parse_task(TASK), caller=Caller(0, True), base_dir="/tmp")
        await planner.replan_once()
        first = child.pid
        assert job.id not in planner.planned  # no provider: nothing to place on
        child.new_world(replace(child.world, providers={"aws": ProviderShape()}))
        assert child.pid == first  # not mid-pass: the old process ends at the next one
        await planner.replan_once()
        assert child.started == 2 and child.pid not in (None, first)
        assert str(planner.planned[job.id]["offer_key"]).startswith("aws/us-east-1")
    finally:
        await child.close()


async def test_a_crash_of_the_planners_process_loses_no_job_and_is_retried(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler, planner, child = _planner(store, tmp_path)
    try:
        job = scheduler.submit(parse_task(TASK), caller=Caller(0, True), base_dir="/tmp")
        await planner.replan_once()
        first = child.pid
        assert job.id in planner.planned

        child.crash_next = True  # the process exits without an answer
        with caplog.at_level(logging.ERROR, logger="skyd.planner"):
            assert await planner.replan_once() is None
        # (its exit code as reaped: another test's reaper may take it first)
        assert "the planner's process failed (exit" in caplog.text
        # compared as a tuple, which mypy does not narrow: the retry below sets a pid again
        assert (planner.crashes, child.pid) == (1, None)
        # what it planned went with it; the job itself is untouched in the store
        assert planner.planned == {}
        assert job_store.get_job(store, job.id).state == JobState.PENDING

        # the retry starts a new process, which plans the job again
        assert await planner.replan_once() is not None
        assert child.pid is not None and child.pid != first and child.started == 2
        assert planner.crashes == 0
        assert planner.planned[job.id]["instance_type"] == "p3.2xlarge"
    finally:
        await child.close()


def _planner_child_of(parent: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == parent and b"skyd.scheduler.plan_child" in cmdline:
            return int(entry.name)
    return None


def test_the_planners_process_dies_with_its_daemon_on_kill_9(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path).start()
    try:
        assert daemon.proc is not None
        status, body, _ = request(
            daemon.socket_path,
            "POST",
            "/v1/jobs",
            {"task_yaml": "name: t\nresources:\n  cloud: local\nrun: 'true'\n", "base_dir": "/"},
        )
        assert status == 201, body
        # the submit triggers a planner pass, which starts the planner's process
        child = wait_until(lambda: _planner_child_of(daemon.proc.pid), timeout=60)  # type: ignore[union-attr]
        pidfd = os.pidfd_open(child)
        try:
            daemon.kill9()
            # readable once the process has ended: the kernel killed it with its parent
            ended, _, _ = select.select([pidfd], [], [], 30)
            assert ended, f"planner process {child} outlived its daemon"
        finally:
            os.close(pidfd)
    finally:
        daemon.close()
