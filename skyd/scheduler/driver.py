"""The scheduler's driver: `JobScheduler`, its public surface, the pass loop, per-job steps
and shutdown.

All state lives in the store; this object only holds what can be rebuilt from it (per-job
locks, the in-flight step set, temporary blocks). One pass looks at every job that holds
resources and at a bounded batch of waiting ones, and starts at most one step per job. A
step is picked by the job's state from `steps`; the flow itself lives in the modules
named after it: admission → selection → launching → attempts (processes, watching) →
recovery, with every write going through transitions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from skyd.clock import Clock
from skyd.config import Settings
from skyd.errors import ProviderError
from skyd.events import EventBus
from skyd.identity import Caller, daemon_identity
from skyd.market.availability_log import AvailabilityLog
from skyd.market.live import LiveMarket
from skyd.model import JobState
from skyd.providers.base import Provider
from skyd.runner.process import ProcessRunner
from skyd.runner.ssh import SshRunner
from skyd.scheduler import budgets
from skyd.scheduler.admission import Admission
from skyd.scheduler.attempts import Attempts
from skyd.scheduler.blocks import ScopeBlocks
from skyd.scheduler.booting import BootWait
from skyd.scheduler.cancelling import Cancels
from skyd.scheduler.changeover_log import ChangeoverLog
from skyd.scheduler.interfaces import (
    BudgetGate,
    ClusterTargets,
    NoBudgets,
    NoClusters,
    NoPlan,
    PlanView,
)
from skyd.scheduler.launching import Launcher
from skyd.scheduler.moving import PolicyMoves
from skyd.scheduler.placement import (
    DataSource,
    PlacementContext,
    PlacementOutcome,
    Placer,
    containers_known,
)
from skyd.scheduler.processes import Processes
from skyd.scheduler.reconcile import ReconcileReport, reconcile
from skyd.scheduler.selection import Selector, planned_placement
from skyd.scheduler.signals import Observe, ObservedRisk
from skyd.scheduler.step_errors import StepErrors
from skyd.scheduler.step_tasks import StepTasks
from skyd.scheduler.transitions import Journal, Transition
from skyd.scheduler.waiting_queue import WAITING, WaitingQueue, learn_waiting_data
from skyd.spec import PipelineSpec, TaskSpec
from skyd.store import Store
from skyd.store import jobs as job_store
from skyd.store.records import JobRecord

log = logging.getLogger("skyd.scheduler")

HOLDING = (JobState.PROVISIONING, JobState.SETTING_UP, JobState.RUNNING)
WAKE_DEBOUNCE_SECONDS = 0.01

Step = Callable[[JobRecord], Awaitable[None]]


class JobScheduler:
    def __init__(
        self,
        *,
        store: Store,
        bus: EventBus,
        clock: Clock,
        settings: Settings,
        providers: Mapping[str, Provider],
        runner: ProcessRunner,
        market: LiveMarket,
        data: DataSource | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self.settings = settings
        self.providers = providers
        self.runner = runner
        self.market = market
        self.data = data
        self.placer = Placer(market, data)
        self.daemon_id = daemon_identity(settings.state_dir)
        self.last_reconcile: ReconcileReport | None = None
        self._next_budget_check = 0.0
        self._budget_version = -1
        # waiting jobs a budget holds, as of the last look: a step of theirs must not start an
        # attempt (a step spawned while the job still ran may run after it was held)
        self._held: set[int] = set()
        self.tasks = StepTasks()
        self._budgets: BudgetGate = NoBudgets()
        self._plan: PlanView = NoPlan()
        self._clusters: ClusterTargets = NoClusters()
        self.waiting = WaitingQueue(store)

        self.journal = Journal(store, bus, clock)
        self.blocks = ScopeBlocks()
        self.risk = ObservedRisk(market, clock, store)
        self.availability = AvailabilityLog(
            store=store, clock=clock, settings=settings.recovery, providers=providers
        )
        self.selector = Selector(
            availability=self.availability,
            placer=self.placer,
            market=market,
            clock=clock,
            blocks=self.blocks,
            providers=providers,
            recovery_settings=settings.recovery,
            step_seconds=settings.scheduler_tick_seconds,
            changeovers=ChangeoverLog(
                store=store,
                configured_hours=settings.recovery.changeover_hours,
                checkpoint_sync_s=settings.cloud_ssh.checkpoint_sync_s,
            ),
        )
        self.admission = Admission(
            store=store,
            clock=clock,
            market=market,
            placer=self.placer,
            providers=providers,
            journal=self.journal,
        )
        self.processes = Processes(
            settings=settings, store=store, providers=providers, runner=runner
        )
        self.attempts = Attempts(
            store=store,
            clock=clock,
            providers=providers,
            journal=self.journal,
            processes=self.processes,
            blocks=self.blocks,
            risk=self.risk,
            describe_every_s=settings.scheduler_tick_seconds,
            move_grace_s=settings.local.cancel_grace_seconds,
        )
        self.attempts.moves = PolicyMoves(selector=self.selector, clock=clock)
        self.launcher = Launcher(
            store=store,
            clock=clock,
            providers=providers,
            market=market,
            daemon_id=self.daemon_id,
            journal=self.journal,
            selector=self.selector,
            attempts=self.attempts,
            blocks=self.blocks,
            risk=self.risk,
        )
        self.step_errors = StepErrors(
            store=store,
            journal=self.journal,
            attempts=self.attempts,
            kill_grace=settings.local.cancel_grace_seconds,
        )
        self.cancels = Cancels(
            store=store,
            journal=self.journal,
            attempts=self.attempts,
            grace=settings.local.cancel_grace_seconds,
        )
        # one step per non-terminal state: what a pass does for a job in that state
        self.steps: dict[JobState, Step] = {
            JobState.PENDING: self.launcher.start_attempt,
            JobState.RECOVERING: self.launcher.start_attempt,
            JobState.PROVISIONING: self.launcher.resume_provisioning,
            JobState.SETTING_UP: self.attempts.watch,
            JobState.RUNNING: self.attempts.watch,
        }

    # -- collaborators the daemon wires in after construction (each has a null default) --

    @property
    def planner(self) -> PlanView:
        return self._plan

    @planner.setter
    def planner(self, plan: PlanView) -> None:
        self._plan = self.launcher.plan = plan

    @property
    def clusters(self) -> ClusterTargets:
        return self._clusters

    @clusters.setter
    def clusters(self, clusters: ClusterTargets) -> None:
        self._clusters = self.launcher.clusters = self.processes.clusters = clusters

    @property
    def accountant(self) -> BudgetGate:
        return self._budgets

    @accountant.setter
    def accountant(self, gate: BudgetGate) -> None:
        self._budgets = self.admission.budgets = self.attempts.budgets = gate

    @property
    def ssh_runner(self) -> SshRunner | None:
        return self.processes.ssh_runner

    @ssh_runner.setter
    def ssh_runner(self, runner: SshRunner | None) -> None:
        self.processes.ssh_runner = runner
        login = self.settings.cloud_ssh
        self.launcher.boot_tries = login.boot_tries
        self.launcher.boot = (
            None
            if runner is None
            else BootWait(
                clock=self.clock,
                providers=self.providers,
                journal=self.journal,
                settings=login,
                connections=runner.connections,
            )
        )

    @property
    def observe(self) -> Observe:
        return self.risk.observe

    @observe.setter
    def observe(self, observe: Observe) -> None:
        self.risk.observe = observe

    # -- commands --------------------------------------------------------------

    def submit(self, spec: TaskSpec, *, caller: Caller, base_dir: str) -> JobRecord:
        return self.admission.submit(spec, caller=caller, base_dir=base_dir)

    async def submit_grouped(self, spec: TaskSpec, *, caller: Caller, base_dir: str) -> JobRecord:
        return await self.admission.submit_grouped(spec, caller=caller, base_dir=base_dir)

    def submit_pipeline(
        self, pipeline: PipelineSpec, *, caller: Caller, base_dir: str
    ) -> list[JobRecord]:
        return self.admission.submit_pipeline(pipeline, caller=caller, base_dir=base_dir)

    async def cancel(self, job_id: int, caller: Caller, *, wait: bool = True) -> JobRecord:
        """Cancel a job and its pipeline's later stages: the request is stored first (a
        restart finishes it). Without `wait`, answers at once with the job as it is, the kill
        running as each job's next step. With `wait` (as before; a forced cluster down needs
        its jobs gone), kills each here under its lock and answers once they have ended."""
        ids = self.cancels.request(job_id, caller)
        if not wait:
            for one in ids:
                self.tasks.spawn(one, self._step)  # a job busy with a step: the next pass
            return job_store.get_job(self.store, job_id)
        for one in ids:
            async with self.tasks.locked(one):
                job = job_store.get_job(self.store, one)
                if job.cancelling:  # else its step (or the job itself) ended it meanwhile
                    await self.cancels.finish(job)
        return job_store.get_job(self.store, job_id)

    # -- views -----------------------------------------------------------------

    def placement_context(self) -> PlacementContext:
        """Blocks, full providers and market signals as of now (call on the loop)."""
        return self.selector.context()

    def decide(
        self, spec: TaskSpec, deadline: float | None, context: PlacementContext | None = None
    ) -> PlacementOutcome:
        """Where `spec` would go now, given blocks and free capacity (also for explain).
        With a `context` it touches no live state, so a worker thread may call it."""
        return self.selector.decide(spec, deadline, context)

    async def engine_known(self, specs: Sequence[TaskSpec]) -> None:
        """A docker job is admitted (or explained) only once the container-engine probe,
        started in the background at daemon start, has answered."""
        await containers_known(self.market, specs)

    async def learn_data(self, specs: Sequence[TaskSpec]) -> None:
        """Look up where the tasks' buckets are and how big (bounded, cached) so that their
        placement prices moving the data."""
        if self.data is not None:
            for spec in specs:
                await self.data.prefetch(spec)

    def data_moves(self, spec: TaskSpec) -> list[dict[str, object]]:
        """The task's data as placement prices it (for explain)."""
        footprint = self.data.footprint(spec) if self.data is not None else None
        if footprint is None:
            return []
        moves = footprint.describe()
        assert self.data is not None
        for move in moves:
            move["note"] = self.data.note(str(move["url"]))
        return moves

    def planned_placement(self, job: JobRecord) -> dict[str, Any] | None:
        """Where a waiting job is planned to go (the planner's memory, else the store)."""
        return planned_placement(job, self._plan)

    def waiting_reason(self, job: JobRecord) -> str | None:
        """Why a waiting job is not placed yet, as the planner last found (None: it is)."""
        if job.state not in (JobState.PENDING, JobState.RECOVERING):
            return None
        reason = self._plan.unplaced_reason.get(job.id)
        return None if reason is None else f"not placed yet: {reason}"

    def job_dir(self, job_id: int) -> Path:
        return self.processes.job_dir(job_id)

    def log_path(self, job_id: int, rank: int = 0) -> Path:
        return self.processes.log_path(job_id, rank)

    def attempt_dir(self, job: JobRecord) -> Path:
        return self.processes.attempt_dir(job)

    # -- the loop --------------------------------------------------------------

    async def run(self) -> None:
        """Reconcile on every change and at least once per tick, until cancelled.

        Never swallows its cancellation: `asyncio.wait_for` (3.11) returns the awaited
        result when a cancel lands just as the change arrives, and the loop then ran on
        while the daemon waited for it to stop. `asyncio.timeout` re-raises the cancel."""
        # jobs left waiting by a previous daemon: learn where their buckets are meanwhile
        learning = (
            None
            if self.data is None
            else asyncio.create_task(learn_waiting_data(self.store, self.data), name="learn-data")
        )
        try:
            await self._loop()
        finally:
            if learning is not None:
                learning.cancel()

    async def _loop(self) -> None:
        while True:
            self.bus.changed.clear()
            try:
                await self.reconcile_once()
            except Exception:
                log.exception("reconcile pass failed; retrying next tick")
            try:
                async with asyncio.timeout(self.settings.scheduler_tick_seconds):
                    await self.bus.changed.wait()
            except TimeoutError:
                continue
            # a burst of submits or exits costs one pass, not one pass each
            await asyncio.sleep(WAKE_DEBOUNCE_SECONDS)

    async def reconcile_once(self) -> None:
        """Watch every job that holds resources; place waiting jobs only while capacity lasts.

        A long queue costs nothing per pass when nothing can start: waiting jobs are read
        in scheduling order, a bounded batch at a time, and only if some provider has room.
        """
        self.attempts.states.new_pass()
        # terminations a killed daemon marked but may not have made (or whose call failed)
        self.attempts.terminations.sweep()
        # cancels asked and not done (a step that raised, or a daemon restarted since): first,
        # so that no waiting job among them is placed again
        for job in job_store.cancelling_jobs(self.store):
            self.tasks.spawn(job.id, self._step)
        for job in job_store.jobs_in_states(self.store, HOLDING):
            self.tasks.spawn(job.id, self._step)
        # at the pass right after an accrual that changed a running job's action (the
        # accountant wakes us), so a budget reached at one tick stops its jobs before the next
        version = self._budgets.actions_version
        if version != self._budget_version or self.clock.now() >= self._next_budget_check:
            self._budget_version = version
            self._next_budget_check = self.clock.now() + budgets.BUDGET_CHECK_SECONDS
            await self.enforce_budgets()
        if not self.admission.accepting or not self.selector.any_capacity():
            return
        batch = self.waiting.batch()
        holds = (
            budgets.holds(
                self._budgets.check_jobs(
                    budgets.waiting_prices(
                        batch, self.planned_placement, self.admission.estimated_hourly
                    )
                )
            )
            if batch and self._budgets.binds()
            else {}
        )
        self._held.difference_update(job.id for job in batch)
        self._held.update(holds)
        for job in batch:
            if not self.selector.any_capacity():
                break
            if job.id in holds:
                self.journal.note_waiting(job, f"held for budget: {holds[job.id]}")
                continue
            self.tasks.spawn(job.id, self._step)
            # let the step claim its slot before the next job looks for one
            await asyncio.sleep(0)

    async def enforce_budgets(self) -> None:
        """Warn running jobs at the warning line; stop or hold them at 100 % (per policy)."""
        for job_id, action in self._budgets.running_over_budget():
            job = job_store.get_job(self.store, job_id)
            # a running job always has a watch step in flight: wait for it (the lock) rather
            # than skip the job, or it is never stopped
            if job.state.is_terminal:
                continue
            if action == "warn":
                self.journal.note_waiting(job, budgets.WARNING)
                continue
            async with self.tasks.locked(job_id):
                job = job_store.get_job(self.store, job_id)
                if job.state not in (JobState.SETTING_UP, JobState.RUNNING) or job.cancelling:
                    # a job being cancelled is stopped by its cancel's step, CANCELLED as its
                    # owner asked: a budget's stop here (FAILED) would win the lock first
                    continue
                target, reason = budgets.over_budget(action)
                if target in WAITING:
                    self._held.add(job_id)
                outcome = Transition(job_id, target, reason, self.clock.now(), kind="budget")
                await self.attempts.release(
                    job, kill_grace=self.settings.local.cancel_grace_seconds, then=outcome
                )

    async def _step(self, job_id: int) -> None:
        async with self.tasks.locked(job_id):
            job = job_store.get_job(self.store, job_id)
            step: Step | None
            if job.cancelling:
                # a cancel asked comes before anything the job's state would do next
                step = self.cancels.finish
            elif job.state in WAITING and job_id in self._held:
                return  # the next pass looks at its budget again
            else:
                step = self.steps.get(job.state)
            if step is None:
                return
            try:
                await step(job)
            except ProviderError as exc:
                # the cloud's own trouble (e.g. a describe that failed after the SDK's
                # retries): the next pass looks again, however long the outage lasts
                log.warning("job %d: %s step: %s; retrying next pass", job_id, job.state, exc)
            except Exception as exc:
                await self.step_errors.failed(job_id, job.state, exc)
            else:
                self.step_errors.succeeded(job_id)

    async def reconcile_now(self) -> ReconcileReport:
        """Compare every provider's skyd resources with the store (see scheduler.reconcile)."""
        report = await reconcile(
            self.store,
            self.providers,
            self.clock,
            daemon_id=self.daemon_id,
            orphan_policy=self.settings.orphans,
            busy_jobs=frozenset(self.tasks.inflight),
        )
        self.last_reconcile = report
        for event in report.events:
            self.journal.publish(event)
        return report

    async def reconcile_forever(self) -> None:
        while True:
            await self.clock.sleep(self.settings.reconcile_interval_seconds)
            try:
                await self.reconcile_now()
            except Exception:
                log.exception("reconcile failed; retrying next interval")

    async def drain(self, budget_seconds: float) -> None:
        """Stop starting new work; let in-flight transitions finish within the budget."""
        self.admission.accepting = False
        pending = [t for t in self.tasks.inflight.values() if not t.done()]
        if pending:
            _done, late = await asyncio.wait(pending, timeout=budget_seconds)
            for task in late:
                task.cancel()
            if late:
                log.warning(
                    "shutdown budget exhausted; %d transitions resume on restart", len(late)
                )
