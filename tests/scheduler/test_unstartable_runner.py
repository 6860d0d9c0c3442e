"""Regression (#12): an attempt whose runner cannot be launched (here: PermissionError exec'ing
the interpreter, as for a `run_as_owner` job whose user may not run it) ends FAILED with
the cause; it used to raise on every pass and hang in SETTING_UP forever."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from skyd.catalog import Catalog
from skyd.clock import VirtualClock
from skyd.daemon import build_providers
from skyd.events import EventBus
from skyd.identity import Caller
from skyd.market.live import LiveMarket
from skyd.model import JobState
from skyd.runner.process import ProcessRunner, RunCommand
from skyd.scheduler.driver import JobScheduler
from skyd.spec import parse_task
from skyd.store import jobs as job_store
from skyd.store import open_store
from skyd.testing.daemon import settings_for_tests


class UnlaunchableRunner(ProcessRunner):
    """The kernel refuses to exec the runner's interpreter."""

    async def start(self, attempt_dir: Path, command: RunCommand) -> int:
        raise PermissionError(13, "Permission denied", sys.executable)


async def test_a_runner_that_cannot_be_launched_fails_the_job_with_its_cause(
    tmp_path: Path,
) -> None:
    settings = settings_for_tests(tmp_path)
    clock = VirtualClock(1_800_000_000.0)
    providers = build_providers(settings, clock)
    store = open_store(settings.state_dir)
    try:
        scheduler = JobScheduler(
            store=store,
            bus=EventBus(),
            clock=clock,
            settings=settings,
            providers=providers,
            runner=UnlaunchableRunner(),
            market=LiveMarket(Catalog.load(settings.catalog_dir), providers),
        )
        job = scheduler.submit(
            parse_task("name: t\nrun: echo hi\n"), caller=Caller(0, True), base_dir="/tmp"
        )
        for _ in range(5):  # a handful of passes: each used to raise again
            await scheduler.reconcile_once()
            await asyncio.gather(*scheduler._inflight.values())
            job = job_store.get_job(store, job.id)
            if job.state.is_terminal:
                break
        assert job.state == JobState.FAILED
        assert job.reason is not None
        assert "PermissionError" in job.reason and "Permission denied" in job.reason
        assert "runner could not be launched" in job.reason
        states = [e.state for e in job_store.job_events(store, job.id) if e.state]
        assert states == ["PENDING", "PROVISIONING", "SETTING_UP", "FAILED"]
    finally:
        store.close()
