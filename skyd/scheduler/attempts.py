"""A started attempt: start its process, watch it to its end, give its instances back, and
recover it when the cloud takes an instance away."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from skyd.clock import Clock
from skyd.errors import ProviderError
from skyd.model import InstanceState, JobState
from skyd.providers.base import Provider
from skyd.providers.ssh.connection import HostKeyChangedError
from skyd.scheduler import recovery, watching
from skyd.scheduler.blocks import PREEMPTION_BLOCK, ScopeBlocks
from skyd.scheduler.describing import InstanceStates
from skyd.scheduler.interfaces import BudgetGate, NoBudgets
from skyd.scheduler.processes import Processes
from skyd.scheduler.signals import ObservedRisk
from skyd.scheduler.transitions import Journal
from skyd.spec import TaskSpec
from skyd.store import Store
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store
from skyd.store.records import InstanceRecord, JobRecord

log = logging.getLogger("skyd.scheduler")

GONE = (InstanceState.PREEMPTED, InstanceState.TERMINATED)


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
    ) -> None:
        self.store = store
        self.clock = clock
        self.providers = providers
        self.journal = journal
        self.processes = processes
        self.blocks = blocks
        self.risk = risk
        self.budgets: BudgetGate = NoBudgets()
        # one describe per (provider, region) per tick for every job's instances
        self.states = InstanceStates(
            store=store, clock=clock, providers=providers, max_age=describe_every_s
        )

    async def describe(self, instances: list[InstanceRecord]) -> dict[str, InstanceState]:
        """States of the given instances from this tick's batched describes."""
        return await self.states.states(instances)

    async def start(self, job: JobRecord, spec: TaskSpec) -> None:
        """Start the attempt's process where it was placed. An attempt that cannot start
        ends here, FAILED with the cause: retried every pass it would hang in SETTING_UP."""
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
        await self.release(job, kill_grace=0.0)
        where = "on its instances" if remote else "(its runner could not be launched)"
        self.journal.move(
            job.id, JobState.FAILED, reason=f"could not start the job {where}: {cause}"
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
            if any(s in GONE for s in states.values()):
                await self.preempted(job, TaskSpec.from_json(job.spec_json), remote, states)
                return
        try:
            status = await self.processes.status(job)
        except HostKeyChangedError as exc:
            # not the machine skyd launched: never run anything more there
            await self.release(job, kill_grace=0.0)
            self.journal.move(job.id, JobState.FAILED, reason=exc.message)
            return
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

    def _run_started(self, job: JobRecord, now: float, started_at: float) -> JobRecord:
        return self.journal.move(
            job.id,
            JobState.RUNNING,
            now=now,
            reason="setup finished; run started",
            started_at=started_at,
        )

    async def _ended(self, job: JobRecord, ended: watching.AttemptEnded, now: float) -> None:
        # the attempt is over: give the instance back, then settle the job
        await self.release(job, kill_grace=0.0)
        if ended.restart is not None:
            self.journal.move(
                job.id, ended.target, now=now, reason=ended.reason, restarts=ended.restart
            )
            return
        if ended.ran_unseen:
            job = self._run_started(job, now, ended.started_at)
        spot_s, on_demand_s = recovery.market_seconds(job_store.job_events(self.store, job.id), now)
        self.journal.move(
            job.id,
            ended.target,
            now=now,
            reason=ended.reason,
            exit_code=ended.exit_code,
            data={"spot_seconds": round(spot_s, 3), "on_demand_seconds": round(on_demand_s, 3)},
        )

    async def release(self, job: JobRecord, *, kill_grace: float) -> None:
        """Stop the job's processes (if any) and give back every instance of the job."""
        if job.attempt > 0:
            await self.processes.kill(job, kill_grace)
        now = self.clock.now()
        for inst in instance_store.instances_for_job(self.store, job.id):
            if inst.state not in instance_store.ACTIVE_INSTANCE_STATES:
                continue
            provider = self.providers.get(inst.provider)
            if provider is None:
                log.error(
                    "instance %s of disabled provider %s left running",
                    inst.instance_id,
                    inst.provider,
                )
                continue
            await provider.terminate([inst.instance_id])
            # its end is when the cloud confirmed it, not when we asked: an accrual pass that
            # ran while terminate() was awaited has charged up to then already
            now = self.clock.now()
            self.journal.instances_ended([(inst.provider, inst.instance_id, "TERMINATED")], now)
        self.accrue(now)

    async def preempted(
        self,
        job: JobRecord,
        spec: TaskSpec,
        instances: list[InstanceRecord],
        states: Mapping[str, InstanceState],
    ) -> None:
        """The cloud took an instance back: stop what is left, record it, recover."""
        lost = [i for i in instances if states.get(i.instance_id) in GONE]
        if job.attempt > 0:
            await self.processes.kill(job, 0.0)
        for inst in instances:
            provider = self.providers.get(inst.provider)
            if provider is not None:
                await provider.terminate([inst.instance_id])
        now = self.clock.now()  # after terminate() returned (see release)
        self.journal.instances_ended(
            [
                (i.provider, i.instance_id, "PREEMPTED" if i in lost else "TERMINATED")
                for i in instances
            ],
            now,
        )
        self.accrue(now)
        first = lost[0] if lost else instances[0]
        zone_scope = f"{first.cloud}/{first.region}/{first.zone}"
        if lost and first.spot:
            self.risk.seen(f"{zone_scope}/{first.instance_type}", "skyd-preemption")
        strategy = spec.recovery_strategy
        for scope in recovery.avoid_after_preemption(strategy, first):
            self.blocks.block(scope, now + PREEMPTION_BLOCK)
        spot_s, on_demand_s = recovery.market_seconds(job_store.job_events(self.store, job.id), now)
        self.journal.move(
            job.id,
            JobState.RECOVERING,
            now=now,
            kind="preempted",
            reason=f"{first.instance_id} in {zone_scope} was preempted; recovering "
            f"({strategy.value.lower()} strategy)",
            data={
                "instance": first.instance_id,
                "zone": zone_scope,
                "spot_seconds": round(spot_s, 3),
                "on_demand_seconds": round(on_demand_s, 3),
            },
            preemptions=job.preemptions + 1,
        )

    def accrue(self, now: float) -> None:
        """Charge instances up to `now` right after one ended, so its last seconds are exact."""
        try:
            self.budgets.accrue(now)
        except Exception:
            log.exception("accrual after an instance change failed; the next pass retries")
