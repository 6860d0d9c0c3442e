"""A started attempt: start its process, watch it to its end, give its instances back, and
recover it when the cloud takes an instance away."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence

from skyd.clock import Clock
from skyd.errors import ProviderError
from skyd.model import InstanceState, JobState, RunPhase
from skyd.providers.base import Provider
from skyd.providers.ssh.connection import HostKeyChangedError
from skyd.runner.bucket_traffic import BucketTraffic
from skyd.scheduler import recovery, watching
from skyd.scheduler.blocks import PREEMPTION_BLOCK, ScopeBlocks
from skyd.scheduler.describing import InstanceStates
from skyd.scheduler.giving_back import Terminations
from skyd.scheduler.interfaces import BudgetGate, NoBudgets
from skyd.scheduler.moving import Move, PolicyMoves
from skyd.scheduler.processes import Processes
from skyd.scheduler.signals import ObservedRisk
from skyd.scheduler.transitions import Journal, Transition
from skyd.spec import TaskSpec
from skyd.store import Store
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store
from skyd.store.changeovers import RAN_UNSEEN
from skyd.store.records import InstanceRecord, JobRecord

log = logging.getLogger("skyd.scheduler")

GONE = (InstanceState.PREEMPTED, InstanceState.TERMINATED)
# a VM the cloud is shutting down that skyd did not give back is lost all the same
LOST = (*GONE, InstanceState.TERMINATING)

# charges what an attempt's buckets moved (skyd.accounting.bucket_transfers), each once
BucketMeter = Callable[[JobRecord, Sequence[BucketTraffic]], Awaitable[object]]

# Test-only crash points (off unless the variable is set): a daemon started with
# SKYD_TEST_CRASH_AT=<point> kills itself with SIGKILL when it reaches <point>, as a kill -9
# there would, so a test can prove that a restart neither loses nor repeats what was done
# (tests/storage/test_write_back_crash.py). Points: "release:killed" (the attempt's process
# is killed and its buckets written back, their bytes not charged yet), "release:charged"
# (charged, the attempt not given back yet).
CRASH_AT = "SKYD_TEST_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class Attempts:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        providers: Mapping[str, Provider],
        journal: Journal,
        processes: Processes,
        blocks: ScopeBlocks,
        risk: ObservedRisk,
        describe_every_s: float = 1.0,
        move_grace_s: float = 5.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.providers = providers
        self.journal = journal
        self.processes = processes
        self.blocks = blocks
        self.risk = risk
        self.budgets: BudgetGate = NoBudgets()
        self.bucket_meter: BucketMeter | None = None  # set by the daemon
        # the spot policy's say on running deadline jobs (the driver wires it in)
        self.moves: PolicyMoves | None = None
        self.move_grace_s = move_grace_s
        # one describe per (provider, region) per tick for every job's instances
        self.states = InstanceStates(
            store=store, clock=clock, providers=providers, max_age=describe_every_s
        )
        self.terminations = Terminations(
            store=store, clock=clock, providers=providers, journal=journal, accrue=self.accrue
        )

    async def describe(self, instances: list[InstanceRecord]) -> dict[str, InstanceState]:
        """States of the given instances from this tick's batched describes."""
        return await self.states.states(instances)

    async def start(self, job: JobRecord, spec: TaskSpec) -> None:
        """Start the attempt's process where it was placed. An attempt that cannot start
        ends here, FAILED with the cause: retried every pass it would hang in SETTING_UP."""
        if job_store.get_job(self.store, job.id).cancelling:
            # a cancel stored while the launch (or the boot wait) was in flight: the job's
            # work never starts; its next step gives the instances back, CANCELLED
            return
        remote = self.processes.runs_over_ssh(job)
        try:
            command = self.processes.prepare(job, spec)
            if remote:
                await self.processes.start_remote(job, spec, command)
            else:
                await self.processes.start_local(job, spec, command)
            return
        except ProviderError as exc:
            cause = exc.message
        except Exception as exc:  # e.g. PermissionError exec'ing the runner as the job's owner
            log.warning("job %d: its runner could not be started", job.id, exc_info=True)
            cause = f"{type(exc).__name__}: {exc}"
        # cannot run where it was launched: give the instances back, say why
        where = "on its instances" if remote else "(its runner could not be launched)"
        await self.release(
            job,
            kill_grace=0.0,
            then=self.outcome(job, JobState.FAILED, f"could not start the job {where}: {cause}"),
        )

    async def watch(self, job: JobRecord) -> None:
        """One look at a SETTING_UP or RUNNING job: its instances, then its process."""
        remote = [
            i
            for i in instance_store.instances_for_job(self.store, job.id)
            if i.attempt == job.attempt
            and i.state in instance_store.ACTIVE_INSTANCE_STATES
            and i.provider != "local"
        ]
        if remote:
            states = await self.describe(remote)
            if any(s in LOST for s in states.values()):
                await self.preempted(job, TaskSpec.from_json(job.spec_json), remote, states)
                return
        try:
            status = await self.processes.status(job)
        except HostKeyChangedError as exc:
            # not the machine skyd launched: never run anything more there
            await self.release(
                job, kill_grace=0.0, then=self.outcome(job, JobState.FAILED, exc.message)
            )
            return
        await self.meter_buckets(job)  # before an end is recorded: a restart re-reads it
        now = self.clock.now()

        def max_restarts() -> int:
            return TaskSpec.from_json(job.spec_json).job_recovery.max_restarts_on_errors

        verdict = watching.judge(job, status, max_restarts=max_restarts, now=now)
        if isinstance(verdict, watching.StartProcess):
            await self.start(job, TaskSpec.from_json(job.spec_json))
        elif isinstance(verdict, watching.RunStarted):
            self._run_started(job, now, verdict.started_at)
        elif isinstance(verdict, watching.AttemptEnded):
            await self._ended(job, verdict, now)
        elif verdict is None and self.moves is not None:
            move = self.moves.check(job, lambda: job_store.job_events(self.store, job.id))
            if move is not None:
                await self._move(job, move)

    async def meter_buckets(self, job: JobRecord) -> None:
        """Charge the bucket data the attempt moved so far (bytes it reported; the meter
        charges each once). Never fatal: a failure is logged and tried at the next poll."""
        if self.bucket_meter is None or job.attempt <= 0:
            return
        try:
            traffic = self.processes.bucket_traffic(job)
            if traffic:
                await self.bucket_meter(job, traffic)
        except Exception:
            log.warning("job %d: could not charge its bucket data", job.id, exc_info=True)

    async def _move(self, job: JobRecord, move: Move) -> None:
        """Stop the attempt as a cancel would (the process may checkpoint in its grace) and
        give its instances back with the move to RECOVERING; placing it again carries the
        policy's decision out."""
        now = self.clock.now()
        data = {**move.data, **self._market_time(job, now)}
        outcome = Transition(job.id, JobState.RECOVERING, move.reason, now, kind="moved", data=data)
        await self.release(job, kill_grace=self.move_grace_s, then=outcome)

    def _market_time(self, job: JobRecord, now: float) -> dict[str, object]:
        """The job's spot and on-demand seconds so far, for the event that ends an attempt."""
        spot_s, on_demand_s = recovery.market_seconds(job_store.job_events(self.store, job.id), now)
        return {"spot_seconds": round(spot_s, 3), "on_demand_seconds": round(on_demand_s, 3)}

    def _run_started(
        self, job: JobRecord, now: float, started_at: float, *, unseen: bool = False
    ) -> JobRecord:
        return self.journal.move(
            job.id,
            JobState.RUNNING,
            now=now,
            reason="setup finished; run started",
            # a run seen only once it had ended: the time up to this event is not the
            # attempt's changeover (skyd.scheduler.changeover leaves it out)
            data={RAN_UNSEEN: True} if unseen else None,
            started_at=started_at,
        )

    async def _ended(self, job: JobRecord, ended: watching.AttemptEnded, now: float) -> None:
        # the attempt is over: the job's outcome and the instances' giving back commit
        # together, then the instances are terminated
        await self.stop(job, 0.0)
        # no await from here to the commit: `ending` reads a cancel stored meanwhile
        await self.give_back(job, self.ending(job, ended, now))

    def ending(self, job: JobRecord, ended: watching.AttemptEnded, now: float) -> Transition:
        """The job's move once its attempt ended by itself: restarted, or its final outcome.
        A final outcome says so when a cancel was stored before it (a cancel that came too
        late: the work had ended before the kill reached it); call it right before the
        commit, so that no cancel stored in between goes unsaid."""
        if ended.restart is not None:
            return Transition(
                job.id, ended.target, ended.reason, now, changes={"restarts": ended.restart}
            )
        if ended.ran_unseen:
            job = self._run_started(job, now, ended.started_at, unseen=True)
        reason, data = ended.reason, self._market_time(job, now)
        late = job_store.get_job(self.store, job.id).cancel_requested_by
        if late is not None:
            reason += f"; the cancel asked by {late} came too late (the job had ended)"
            data["cancel_too_late"] = late
        return Transition(
            job.id, ended.target, reason, now, data=data, changes={"exit_code": ended.exit_code}
        )

    async def own_end(self, job: JobRecord) -> watching.AttemptEnded | None:
        """How the running attempt ended by itself, if its process recorded an end, without
        a restart to follow; else None (still running, killed, lost, or not a started
        attempt). Every runner records a kill that reached a running process as KILLED, never
        as its exit (the shims once SIGTERM arrived, Slurm and Kubernetes once they cancel),
        so a recorded exit is the work's own end."""
        if job.state not in (JobState.SETTING_UP, JobState.RUNNING) or job.attempt <= 0:
            return None
        try:
            status = await self.processes.status(job)
        except Exception:  # the cancel goes on with its kill: a look must not hold it up
            log.warning("job %d: could not look at its process", job.id, exc_info=True)
            return None
        if status.phase != RunPhase.DONE:
            return None

        def max_restarts() -> int:
            return TaskSpec.from_json(job.spec_json).job_recovery.max_restarts_on_errors

        verdict = watching.judge(job, status, max_restarts=max_restarts, now=self.clock.now())
        if isinstance(verdict, watching.AttemptEnded) and verdict.restart is None:
            return verdict
        return None

    def outcome(
        self, job: JobRecord, target: JobState, reason: str, **changes: object
    ) -> Transition:
        """The job's move to `target` now (to commit with its instances' giving back)."""
        return Transition(job.id, target, reason, self.clock.now(), changes=changes)

    async def release(
        self, job: JobRecord, *, kill_grace: float, then: Transition | None = None
    ) -> JobRecord | None:
        """Stop the job's processes, mark every instance it holds TERMINATING in the same
        commit as the job's outcome `then` (the move it returns), then terminate them and
        record each end. A restart finishes what a kill interrupted (`Terminations`)."""
        await self.stop(job, kill_grace)
        return await self.give_back(job, then)

    async def stop(self, job: JobRecord, kill_grace: float) -> None:
        """Kill the attempt's processes (SIGTERM, the grace, the buckets written back) and
        charge the bucket data it moved."""
        if job.attempt > 0:
            await self.processes.kill(job, kill_grace)
            crash_point("release:killed")
            await self.meter_buckets(job)
            crash_point("release:charged")

    async def give_back(self, job: JobRecord, then: Transition | None) -> JobRecord | None:
        """Mark the job's instances TERMINATING with its outcome `then`, in one commit (the
        move it returns), then terminate them and record each end."""
        held = [
            i
            for i in instance_store.instances_for_job(self.store, job.id)
            if i.state in instance_store.ACTIVE_INSTANCE_STATES
        ]
        moved = self.journal.giving_back(
            [(i.provider, i.instance_id, "TERMINATED") for i in held], then
        )
        await self.terminations.finish_for_job(job.id)
        return moved

    async def preempted(
        self,
        job: JobRecord,
        spec: TaskSpec,
        instances: list[InstanceRecord],
        states: Mapping[str, InstanceState],
    ) -> None:
        """The cloud took an instance back: stop what is left, give back all (the lost ones
        end PREEMPTED) with the move to RECOVERING, recover."""
        lost = [i for i in instances if states.get(i.instance_id) in LOST]
        if job.attempt > 0:
            await self.processes.kill(job, 0.0)
            await self.meter_buckets(job)  # what it read before the cloud took it back
        now = self.clock.now()
        first = lost[0] if lost else instances[0]
        zone_scope = f"{first.cloud}/{first.region}/{first.zone}"
        if lost and first.spot:
            self.risk.seen(f"{zone_scope}/{first.instance_type}", "skyd-preemption")
        strategy = spec.recovery_strategy
        for scope in recovery.avoid_after_preemption(strategy, first):
            self.blocks.block(scope, now + PREEMPTION_BLOCK)
        outcome = Transition(
            job.id,
            JobState.RECOVERING,
            f"{first.instance_id} in {zone_scope} was preempted; recovering "
            f"({strategy.value.lower()} strategy)",
            now,
            kind="preempted",
            data={
                "instance": first.instance_id,
                "zone": zone_scope,
                **self._market_time(job, now),
            },
            changes={"preemptions": job.preemptions + 1},
        )
        # each is terminated all the same (a preempted GCE VM stays, stopped, until deleted)
        self.journal.giving_back(
            [
                (i.provider, i.instance_id, "PREEMPTED" if i in lost else "TERMINATED")
                for i in instances
            ],
            outcome,
        )
        await self.terminations.finish_for_job(job.id)

    def accrue(self, now: float) -> None:
        """Charge instances up to `now` right after one ended, so its last seconds are exact."""
        try:
            self.budgets.accrue(now)
        except Exception:
            log.exception("accrual after an instance change failed; the next pass retries")
