"""What a poll of a started attempt means for its job (SETTING_UP or RUNNING). Pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from skyd.model import JobState, RunPhase, RunStatus
from skyd.store.records import JobRecord


@dataclass(frozen=True, slots=True)
class StartProcess:
    """No process ever ran for this attempt (the daemon stopped between launch and spawn)."""


@dataclass(frozen=True, slots=True)
class RunStarted:
    """Setup finished and the run began."""

    started_at: float


@dataclass(frozen=True, slots=True)
class AttemptEnded:
    """The attempt is over: release it, then restart (`restart` is its number) or settle."""

    target: JobState
    reason: str
    exit_code: int | None
    restart: int | None
    ran_unseen: bool  # the run went by between two polls: record that it ran first
    started_at: float


Verdict = StartProcess | RunStarted | AttemptEnded | None


def judge(
    job: JobRecord, status: RunStatus, *, max_restarts: Callable[[], int], now: float
) -> Verdict:
    """The next step for `job` given its process's `status` (None: nothing to do yet).
    `max_restarts` is asked only once the attempt ended (it parses the job's spec)."""
    if status.phase == RunPhase.NOT_STARTED:
        return StartProcess()
    if status.phase == RunPhase.SETUP:
        return None
    started_at = _on_daemon_clock(job, status.run_started_at, now)
    if status.phase == RunPhase.RUN:
        return RunStarted(started_at) if job.state == JobState.SETTING_UP else None
    target, reason, code = _ending(status)
    allowed = max_restarts()
    if target == JobState.FAILED and job.restarts < allowed:
        restart = job.restarts + 1
        return AttemptEnded(
            JobState.RECOVERING,
            f"{reason}; restarting ({restart} of {allowed} restarts on errors)",
            code,
            restart,
            ran_unseen=False,
            started_at=started_at,
        )
    ran_unseen = job.state == JobState.SETTING_UP and target in (
        JobState.SUCCEEDED,
        JobState.FAILED,
    )
    return AttemptEnded(target, reason, code, None, ran_unseen, started_at)


def _on_daemon_clock(job: JobRecord, reported: float | None, now: float) -> float:
    """When the run began, as its process reported it, kept between the moment the job
    entered its current state (SETTING_UP: the attempt's setup began) and now.

    The process stamps the start with its own machine's clock, and a VM's clock can be off
    by minutes or, unsynchronised, hours: a start in the future, or before setup began,
    would skew the job's recorded start and the planner's estimate of the work done."""
    if reported is None:
        return now
    return min(max(reported, job.updated_at), now)


def _ending(status: RunStatus) -> tuple[JobState, str, int | None]:
    target, reason, code = _how_it_ended(status)
    if status.node is not None:  # one node of a gang ended it: say which
        reason = f"node {status.node}: {reason}"
    return target, reason, code


def _how_it_ended(status: RunStatus) -> tuple[JobState, str, int | None]:
    if status.phase == RunPhase.DONE and status.setup_exit not in (0, None):
        return (
            JobState.FAILED_SETUP,
            f"setup exited with code {status.setup_exit}",
            status.setup_exit,
        )
    if status.phase == RunPhase.DONE and status.run_exit == 0:
        return JobState.SUCCEEDED, "run exited with code 0", 0
    if status.phase == RunPhase.DONE:
        return JobState.FAILED, f"run exited with code {status.run_exit}", status.run_exit
    if status.phase == RunPhase.KILLED:
        return JobState.FAILED, "the job was killed by a signal", None
    return (
        JobState.FAILED,
        "the job's runner disappeared without recording an exit status",
        None,
    )
