"""The split scheduler's pieces on their own: the driver's step table, and the pure modules
(watching, blocks, recovery's strategy table) without a store."""

from __future__ import annotations

from dataclasses import replace

from skyd.errors import CapacityError, QuotaError
from skyd.model import ALLOWED_TRANSITIONS, JobState, RunPhase, RunStatus
from skyd.scheduler import recovery, watching
from skyd.scheduler.blocks import ScopeBlocks
from skyd.scheduler.driver import JobScheduler
from skyd.spec.task import RecoveryStrategy
from skyd.store.records import InstanceRecord, JobRecord
from skyd.testing.records import job_record

JOB = job_record()


def test_every_non_terminal_state_has_exactly_one_step(bare_scheduler: JobScheduler) -> None:
    scheduler = bare_scheduler
    non_terminal = {s for s in ALLOWED_TRANSITIONS if not s.is_terminal}
    assert set(scheduler.steps) == non_terminal
    assert all(not s.is_terminal for s in scheduler.steps)


def _judge(job: JobRecord, status: RunStatus, restarts: int = 0) -> watching.Verdict:
    return watching.judge(job, status, max_restarts=lambda: restarts, now=100.0)


def test_watching_maps_each_run_phase_to_one_verdict() -> None:
    running = replace(JOB, state=JobState.RUNNING)
    assert _judge(JOB, RunStatus(RunPhase.NOT_STARTED)) == watching.StartProcess()
    assert _judge(JOB, RunStatus(RunPhase.SETUP)) is None
    assert _judge(JOB, RunStatus(RunPhase.RUN, run_started_at=90.0)) == watching.RunStarted(90.0)
    assert _judge(running, RunStatus(RunPhase.RUN)) is None
    ok = _judge(running, RunStatus(RunPhase.DONE, setup_exit=0, run_exit=0))
    assert isinstance(ok, watching.AttemptEnded)
    assert (ok.target, ok.exit_code, ok.restart, ok.ran_unseen) == (
        JobState.SUCCEEDED,
        0,
        None,
        False,
    )
    setup = _judge(JOB, RunStatus(RunPhase.DONE, setup_exit=3))
    assert isinstance(setup, watching.AttemptEnded) and setup.target == JobState.FAILED_SETUP
    # a run that went by between two polls is recorded as having run
    quick = _judge(JOB, RunStatus(RunPhase.DONE, setup_exit=0, run_exit=1))
    assert isinstance(quick, watching.AttemptEnded) and quick.ran_unseen
    lost = _judge(running, RunStatus(RunPhase.LOST))
    assert isinstance(lost, watching.AttemptEnded) and "disappeared" in lost.reason


def test_a_run_start_stamped_by_a_skewed_vm_clock_is_kept_within_the_daemons_view() -> None:
    # setup began at 40 on the daemon's clock; the poll is at 100
    job = replace(JOB, updated_at=40.0)
    ahead = _judge(job, RunStatus(RunPhase.RUN, run_started_at=3_700.0))  # VM clock 1 h fast
    behind = _judge(job, RunStatus(RunPhase.RUN, run_started_at=-7_100.0))  # 2 h slow
    honest = _judge(job, RunStatus(RunPhase.RUN, run_started_at=70.0))
    assert ahead == watching.RunStarted(100.0)
    assert behind == watching.RunStarted(40.0)
    assert honest == watching.RunStarted(70.0)
    ended = _judge(job, RunStatus(RunPhase.DONE, run_exit=0, run_started_at=9_999.0))
    assert isinstance(ended, watching.AttemptEnded) and ended.ran_unseen
    assert ended.started_at == 100.0


def test_watching_restarts_failures_within_the_allowance() -> None:
    running = replace(JOB, state=JobState.RUNNING, restarts=1)
    again = _judge(running, RunStatus(RunPhase.KILLED), restarts=2)
    assert isinstance(again, watching.AttemptEnded)
    assert (again.target, again.restart) == (JobState.RECOVERING, 2)
    assert "restarting (2 of 2" in again.reason
    spent = _judge(running, RunStatus(RunPhase.KILLED), restarts=1)
    assert isinstance(spent, watching.AttemptEnded) and spent.target == JobState.FAILED


def test_blocks_expire_by_the_time_given() -> None:
    blocks = ScopeBlocks()
    blocks.block_after(CapacityError("no room", scope="aws/us-east-1/us-east-1a"), "z", 0.0)
    blocks.block_after(QuotaError("quota"), "r", 0.0)
    assert blocks.active(599.0) == {"z", "r"}
    assert blocks.active(600.0) == {"r"}
    assert blocks.active(3600.0) == frozenset()


def test_recovery_strategies_block_what_their_table_says() -> None:
    lost = InstanceRecord(
        provider="sim",
        instance_id="i-1",
        job_id=7,
        attempt=1,
        client_token="t",
        cloud="aws",
        region="us-east-1",
        zone="us-east-1a",
        instance_type="p3.2xlarge",
        spot=True,
        state="PREEMPTED",
        hourly_price_micros=1,
        launched_at=0.0,
        ended_at=None,
        tags={},
        data={},
    )
    avoid = recovery.avoid_after_preemption
    assert avoid(RecoveryStrategy.FAILOVER, lost) == ["aws/us-east-1/us-east-1a/p3.2xlarge/spot"]
    assert avoid(RecoveryStrategy.EAGER_NEXT_REGION, lost) == ["aws/us-east-1"]
    assert avoid(RecoveryStrategy.DEADLINE, lost) == []
