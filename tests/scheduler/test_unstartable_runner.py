"""Regression (#12): an attempt whose runner cannot be launched (here: PermissionError exec'ing
the interpreter, as for a `run_as_owner` job whose user may not run it) ends FAILED with
the cause; it used to raise on every pass and hang in SETTING_UP forever."""

from __future__ import annotations

import sys
from pathlib import Path

from skyd.model import JobState
from skyd.runner.process import ProcessRunner, RunCommand
from skyd.store import jobs as job_store
from skyd.testing.daemon import settings_for_tests
from skyd.testing.scheduler_world import one_pass, scheduler_world, submit_yaml


class UnlaunchableRunner(ProcessRunner):
    """The kernel refuses to exec the runner's interpreter."""

    async def start(self, attempt_dir: Path, command: RunCommand) -> int:
        raise PermissionError(13, "Permission denied", sys.executable)


async def test_a_runner_that_cannot_be_launched_fails_the_job_with_its_cause(
    tmp_path: Path,
) -> None:
    settings = settings_for_tests(tmp_path)
    async with scheduler_world(settings, runner=UnlaunchableRunner()) as (scheduler, store):
        job = submit_yaml(scheduler, "name: t\nrun: echo hi\n")
        for _ in range(5):  # a handful of passes: each used to raise again
            await one_pass(scheduler)
            job = job_store.get_job(store, job.id)
            if job.state.is_terminal:
                break
        assert job.state == JobState.FAILED
        assert job.reason is not None
        assert "PermissionError" in job.reason and "Permission denied" in job.reason
        assert "runner could not be launched" in job.reason
        states = [e.state for e in job_store.job_events(store, job.id) if e.state]
        assert states == ["PENDING", "PROVISIONING", "SETTING_UP", "FAILED"]
