"""Drives every job through its lifecycle: submit, place, launch, watch, finish, cancel, recover.

All state lives in the store; this object only holds what can be rebuilt from it
(per-job locks, the in-flight operation set, temporary blocks). One reconcile pass
looks at every active job and starts at most one operation per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import pwd
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skyd.clock import Clock
from skyd.config import Settings
from skyd.errors import (
    AuthError,
    CapacityError,
    ConflictError,
    InfeasibleError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    QuotaError,
    SpecError,
    TransientError,
)
from skyd.events import EventBus
from skyd.identity import Caller, daemon_identity
from skyd.market.live import LiveMarket
from skyd.model import (
    Candidate,
    ExclusionReason,
    InstanceState,
    JobState,
    LaunchRequest,
)
from skyd.policy import POLICIES
from skyd.providers.base import (
    TAG_ATTEMPT,
    TAG_DAEMON,
    TAG_JOB,
    TAG_MANAGED,
    TAG_TOKEN,
    InstanceLister,
    Provider,
)
from skyd.runner.process import ProcessRunner, RunCommand, RunPhase, RunStatus, read_status
from skyd.runner.ssh import SshRunner, cloud_nodes, ssh_nodes
from skyd.scheduler import recovery
from skyd.scheduler.placement import PlacementContext, PlacementOutcome, Placer, job_filters
from skyd.scheduler.reconcile import ReconcileReport, reconcile

if TYPE_CHECKING:
    from skyd.accounting import Accountant
    from skyd.clusters import ClusterService
    from skyd.scheduler.planner import Planner
from skyd.spec import TaskSpec
from skyd.spec.task import RecoveryStrategy
from skyd.store import Store
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store
from skyd.store.market import Observation
from skyd.store.records import EventRecord, InstanceRecord, JobRecord

log = logging.getLogger("skyd.scheduler")

_HOLDING = (JobState.PROVISIONING, JobState.SETTING_UP, JobState.RUNNING)
_GONE = (InstanceState.PREEMPTED, InstanceState.TERMINATED)
_REMOTE_PROVIDERS = frozenset({"ssh", "aws", "gcp", "azure"})
PREEMPTION_BLOCK = 300.0  # seconds a preempted zone/region is avoided by FAILOVER strategies
_WAITING = (JobState.RECOVERING, JobState.PENDING)
PLACEMENT_BATCH = 64  # waiting jobs considered per pass
WAKE_DEBOUNCE_SECONDS = 0.01
BUDGET_CHECK_SECONDS = 30.0
FEASIBILITY_CACHE_SIZE = 512
OBSERVED_PREEMPTIONS_PER_HOUR = 0.5  # what one observed loss implies, at least

# How long a failed scope (zone, region, cloud) is skipped before it is tried again.
BLOCK_SECONDS = {CapacityError: 600.0, QuotaError: 3600.0, AuthError: 3600.0}


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
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self.settings = settings
        self.providers = providers
        self.runner = runner
        self.market = market
        self.placer = Placer(market)
        self.planner: Planner | None = None
        self.clusters: ClusterService | None = None
        self.ssh_runner: SshRunner | None = None
        self.accountant: Accountant | None = None
        # records market observations (the poller's apply): what skyd sees itself counts
        self.observe: Callable[[list[Observation]], object] | None = None
        self._next_budget_check = 0.0
        self._feasible_cache: dict[tuple[object, ...], PlacementOutcome] = {}
        self._to_insert: list[
            tuple[dict[str, Any], asyncio.Future[tuple[JobRecord, EventRecord]]]
        ] = []
        self.daemon_id = daemon_identity(settings.state_dir)
        self.last_reconcile: ReconcileReport | None = None
        self._locks: dict[int, asyncio.Lock] = {}
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._blocked: dict[str, float] = {}  # scope → blocked until
        self._waiting_reason: dict[int, str] = {}
        self._accepting = True

    # -- commands ------------------------------------------------------------

    def _emit(self, event: EventRecord) -> None:
        self.bus.publish(event)

    def _move(self, job_id: int, target: JobState, **change: Any) -> JobRecord:
        """Change a job's state (with its event, atomically) and announce the event."""
        job, event = job_store.transition(self.store, job_id, target, **change)
        self._emit(event)
        return job

    def submit(self, spec: TaskSpec, *, caller: Caller, base_dir: str) -> JobRecord:
        """Admit and store a job in its own transaction."""
        new_job, hold = self._admit(spec, caller=caller, base_dir=base_dir)
        job, event = job_store.insert_job(self.store, **new_job)
        return self._admitted(job, event, hold)

    async def submit_grouped(self, spec: TaskSpec, *, caller: Caller, base_dir: str) -> JobRecord:
        """Like submit, but submits arriving in the same loop turn commit together (one
        transaction, one WAL append): each caller is answered only after its job is stored."""
        new_job, hold = self._admit(spec, caller=caller, base_dir=base_dir)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[tuple[JobRecord, EventRecord]] = loop.create_future()
        self._to_insert.append((new_job, done))
        if len(self._to_insert) == 1:
            loop.call_soon(self._insert_grouped)
        job, event = await done
        return self._admitted(job, event, hold)

    def _insert_grouped(self) -> None:
        batch, self._to_insert = self._to_insert, []
        try:
            stored = job_store.insert_jobs(self.store, [new_job for new_job, _ in batch])
        except Exception as exc:  # nothing of the batch was stored: every caller hears why
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        for (_, done), result in zip(batch, stored, strict=True):
            if not done.done():
                done.set_result(result)

    def _admitted(self, job: JobRecord, event: EventRecord, hold: str | None) -> JobRecord:
        self._emit(event)
        if hold:
            self._note_waiting(job, f"held for budget: {hold}")
        return job

    def _admit(
        self, spec: TaskSpec, *, caller: Caller, base_dir: str
    ) -> tuple[dict[str, Any], str | None]:
        """Check a submission (feasible, deadline, budgets) and say what to store."""
        if not self._accepting:
            raise ProviderError("skyd is shutting down; submit again when it is back")
        now = self.clock.now()
        deadline = spec.deadline_at(now)
        if deadline is not None and deadline <= now:
            raise SpecError(
                f"deadline: {spec.deadline.text if spec.deadline else ''} is already past; "
                "give a future time or a duration like 36h",
                "deadline",
            )
        # feasible at all, ignoring what is busy or blocked right now? (a sweep submits the
        # same resources many times: the answer is kept until the market changes)
        outcome = self._feasibility(spec)
        if outcome.decision.chosen is None:
            # the failure path may be slow: look at every cloud to say where it is offered
            outcome = self.placer.decide(spec, context=PlacementContext(every_cloud=True))
            disabled = sorted(
                {
                    view.candidate.offer.cloud
                    for view in outcome.decision.candidates
                    if view.excluded == ExclusionReason.PROVIDER_DISABLED
                }
            )
            hint = (
                f"; offered on {', '.join(disabled)}, whose providers are not enabled"
                f" (enabled: {', '.join(sorted(self.providers)) or 'none'})"
                if disabled
                else ""
            )
            raise InfeasibleError(f"{outcome.decision.reason}{hint}")
        hold = None
        if self.accountant is not None:
            chosen = outcome.decision.chosen
            hourly = chosen.hourly_price_micros * spec.num_nodes if chosen else None
            decision = self.accountant.check_submit(spec, caller, hourly)  # may refuse
            hold = decision.message if decision.hold else None
        new_job = {
            "name": spec.name or "job",
            "owner_uid": caller.uid,
            "owner_name": caller.name,
            "project": spec.project,
            "priority": spec.priority,
            "spec_json": spec.to_json(),
            "base_dir": base_dir,
            "deadline": deadline,
            "now": now,
        }
        return new_job, hold

    def _feasibility(self, spec: TaskSpec) -> PlacementOutcome:
        key = (
            spec.resources.model_dump_json(),
            spec.num_nodes,
            spec.objective,
            tuple(sorted(spec.estimated_runtime.items())),
            self.market.version,
        )
        cached = self._feasible_cache.get(key)
        if cached is None:
            cached = self.placer.decide(spec)
            if len(self._feasible_cache) >= FEASIBILITY_CACHE_SIZE:
                self._feasible_cache.clear()
            self._feasible_cache[key] = cached
        return cached

    async def cancel(self, job_id: int, caller: Caller) -> JobRecord:
        job = job_store.get_job(self.store, job_id)
        if job.owner_uid != caller.uid and not caller.is_admin:
            raise PermissionDeniedError(
                f"job {job_id} belongs to {job.owner_name}; "
                "only its owner or an admin may cancel it"
            )
        if job.state.is_terminal:
            return job
        async with self._lock(job_id):
            job = job_store.get_job(self.store, job_id)
            if job.state.is_terminal:
                return job
            await self._release(job, kill_grace=self.settings.local.cancel_grace_seconds)
            job = self._move(
                job_id,
                JobState.CANCELLED,
                now=self.clock.now(),
                reason=f"cancelled by {caller.name}",
            )
        return job

    # -- the loop ------------------------------------------------------------

    async def run(self) -> None:
        """Reconcile on every change and at least once per tick, until cancelled."""
        while True:
            self.bus.changed.clear()
            try:
                await self.reconcile_once()
            except Exception:
                log.exception("reconcile pass failed; retrying next tick")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.bus.changed.wait(), timeout=self.settings.scheduler_tick_seconds
                )
                # a burst of submits or exits costs one pass, not one pass each
                await asyncio.sleep(WAKE_DEBOUNCE_SECONDS)

    async def reconcile_once(self) -> None:
        """Watch every job that holds resources; place waiting jobs only while capacity lasts.

        A long queue costs nothing per pass when nothing can start: waiting jobs are read
        in scheduling order, a bounded batch at a time, and only if some provider has room.
        """
        for job in job_store.jobs_in_states(self.store, _HOLDING):
            self._spawn_step(job.id)
        if self.accountant is not None and self.clock.now() >= self._next_budget_check:
            self._next_budget_check = self.clock.now() + BUDGET_CHECK_SECONDS
            await self.enforce_budgets()
        if not self._accepting or not self._any_capacity():
            return
        batch = job_store.jobs_in_states(self.store, _WAITING, limit=PLACEMENT_BATCH)
        holds = self._budget_holds(batch)
        for job in batch:
            if not self._any_capacity():
                break
            if job.id in holds:
                self._note_waiting(job, f"held for budget: {holds[job.id]}")
                continue
            self._spawn_step(job.id)
            # let the step claim its slot before the next job looks for one
            await asyncio.sleep(0)

    def _budget_holds(self, batch: list[JobRecord]) -> dict[int, str]:
        """Waiting jobs that budgets or user limits keep from starting now (job → why)."""
        if self.accountant is None or not batch:
            return {}
        waiting: dict[int, int | None] = {}
        for job in batch:
            placement = job.placement or {}
            price = placement.get("hourly_price")
            waiting[job.id] = None if price is None else int(float(price) * 1_000_000)
        decisions = self.accountant.check_jobs(waiting)
        return {jid: d.message for jid, d in decisions.items() if d.hold}

    async def enforce_budgets(self) -> None:
        """Warn running jobs at the warning line; stop or hold them at 100 % (per policy)."""
        if self.accountant is None:
            return
        for job_id, action in self.accountant.running_over_budget():
            job = job_store.get_job(self.store, job_id)
            if job.state.is_terminal or job.id in self._inflight:
                continue
            if action == "warn":
                self._note_waiting(job, "project budget nearly spent (warning line reached)")
                continue
            async with self._lock(job_id):
                job = job_store.get_job(self.store, job_id)
                if job.state not in (JobState.SETTING_UP, JobState.RUNNING):
                    continue
                await self._release(job, kill_grace=self.settings.local.cancel_grace_seconds)
                target = JobState.FAILED if action == "stop" else JobState.RECOVERING
                verb = "stopped" if action == "stop" else "held until the budget allows"
                job = self._move(
                    job_id,
                    target,
                    now=self.clock.now(),
                    kind="budget",
                    reason=f"{verb}: its project's budget is spent",
                )

    def _spawn_step(self, job_id: int) -> None:
        if job_id in self._inflight or self._lock(job_id).locked():
            return
        task = asyncio.create_task(self._step(job_id), name=f"job-{job_id}")
        self._inflight[job_id] = task
        task.add_done_callback(functools.partial(self._forget, job_id))

    def _any_capacity(self) -> bool:
        for provider in self.providers.values():
            free = getattr(provider, "free_slots", None)
            if free is None or free() > 0:
                return True
        return False

    async def reconcile_now(self) -> ReconcileReport:
        """Compare every provider's skyd resources with the store (see scheduler.reconcile)."""
        report = await reconcile(
            self.store,
            self.providers,
            self.clock,
            daemon_id=self.daemon_id,
            orphan_policy=self.settings.orphans,
            busy_jobs=frozenset(self._inflight),
        )
        self.last_reconcile = report
        for event in report.events:
            self._emit(event)
        return report

    async def reconcile_forever(self) -> None:
        while True:
            await self.clock.sleep(self.settings.reconcile_interval_seconds)
            try:
                await self.reconcile_now()
            except Exception:
                log.exception("reconcile failed; retrying next interval")

    def _forget(self, job_id: int, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(job_id, None)

    async def drain(self, budget_seconds: float) -> None:
        """Stop starting new work; let in-flight transitions finish within the budget."""
        self._accepting = False
        pending = [t for t in self._inflight.values() if not t.done()]
        if pending:
            _done, late = await asyncio.wait(pending, timeout=budget_seconds)
            for task in late:
                task.cancel()
            if late:
                log.warning(
                    "shutdown budget exhausted; %d transitions resume on restart", len(late)
                )

    def _lock(self, job_id: int) -> asyncio.Lock:
        return self._locks.setdefault(job_id, asyncio.Lock())

    async def _step(self, job_id: int) -> None:
        async with self._lock(job_id):
            job = job_store.get_job(self.store, job_id)
            if job.state in (JobState.PENDING, JobState.RECOVERING):
                await self._start_attempt(job)
            elif job.state == JobState.PROVISIONING:
                await self._resume_provisioning(job)
            elif job.state in (JobState.SETTING_UP, JobState.RUNNING):
                await self._watch(job)

    # -- placement and launch ----------------------------------------------------

    def _active_blocks(self) -> frozenset[str]:
        now = self.clock.now()
        self._blocked = {s: t for s, t in self._blocked.items() if t > now}
        return frozenset(self._blocked)

    def _is_full(self, provider: str) -> bool:
        free = getattr(self.providers[provider], "free_slots", None)
        return free is not None and free() <= 0

    def placement_context(self) -> PlacementContext:
        """Blocks, full providers and market signals as of now (call on the loop)."""
        return PlacementContext(
            blocked=self._active_blocks() | frozenset(self.market.unavailable),
            full_providers=frozenset(p for p in self.providers if self._is_full(p)),
            signals=self.market.signals(),
            market_version=self.market.version,
        )

    def decide(
        self, spec: TaskSpec, deadline: float | None, context: PlacementContext | None = None
    ) -> PlacementOutcome:
        """Where `spec` would go now, given blocks and free capacity (also for explain).
        With a `context` it touches no live state, so a worker thread may call it."""
        now = self.clock.now()
        return self.placer.decide(
            spec,
            deadline_hours=None if deadline is None else max(0.0, (deadline - now) / 3600.0),
            context=context or self.placement_context(),
        )

    def planned_placement(self, job: JobRecord) -> dict[str, Any] | None:
        """Where a waiting job is planned to go (the planner's memory, else the store)."""
        if self.planner is not None and job.state in (JobState.PENDING, JobState.RECOVERING):
            held = self.planner.planned.get(job.id)
            if held is not None:
                return held
        return job.placement

    def waiting_reason(self, job: JobRecord) -> str | None:
        """Why a waiting job is not placed yet, as the planner last found (None: it is)."""
        if self.planner is None or job.state not in (JobState.PENDING, JobState.RECOVERING):
            return None
        reason = self.planner.unplaced_reason.get(job.id)
        return None if reason is None else f"not placed yet: {reason}"

    def _planned_choice(self, job: JobRecord) -> Choice | None:
        """The planner's choice for a waiting job, if it is still possible right now."""
        placement = self.planned_placement(job) or {}
        if not placement.get("planned"):
            return None
        offer = self.market.catalog.offer_by_key(str(placement.get("offer_key")))
        if offer is None:
            return None
        spot = bool(placement.get("spot"))
        price = offer.hourly_micros(spot)
        provider = self.market.provider_for(offer.cloud)
        blocked = self._active_blocks()
        scopes = {
            offer.cloud,
            f"{offer.cloud}/{offer.region}",
            f"{offer.cloud}/{offer.region}/{offer.zone}",
            offer.key,
        }
        if spot:
            scopes.add(f"{offer.key}/spot")
            blocked = blocked | frozenset(self.market.unavailable)
        if price is None or provider is None or self._is_full(provider) or scopes & blocked:
            return None
        live = self.market.spot_prices.get(offer.key) if spot else None
        return Choice(provider, Candidate(offer, spot, live or price))

    async def _start_on_cluster(self, job: JobRecord, spec: TaskSpec) -> bool:
        """A job bound to an interactive cluster runs on its instances: nothing is launched.
        Returns False for an ordinary job."""
        if self.clusters is None:
            return False
        try:
            target = self.clusters.target_for_job(job.id)
        except ConflictError as exc:
            self._note_waiting(job, f"waiting: {exc.message}")
            return True
        except NotFoundError as exc:
            job = self._move(job.id, JobState.FAILED, now=self.clock.now(), reason=exc.message)
            return True
        if target is None:
            return False
        first = target.instances[0] if target.instances else None
        placement = {
            "provider": target.provider,
            "cluster": True,
            "cloud": first.cloud if first else target.provider,
            "region": first.region if first else "",
            "zone": first.zone if first else "",
            "instance_type": first.instance_type if first else "",
            "spot": bool(first.spot) if first else False,
            "hourly_price": (first.hourly_price_micros if first else 0) / 1_000_000,
            "expected_cost": None,
            "why": "runs on its cluster's instances (nothing launched)",
        }
        attempt = job.attempt + 1
        job = self._move(
            job.id,
            JobState.PROVISIONING,
            now=self.clock.now(),
            reason="bound to a cluster: " + ", ".join(i.instance_id for i in target.instances),
            data={"attempt": attempt, "placement": placement},
            attempt=attempt,
            placement_json=json.dumps(placement),
        )
        job = self._move(job.id, JobState.SETTING_UP, now=self.clock.now(), reason="cluster is up")
        await self._start_runner(job, spec)
        return True

    async def _start_attempt(self, job: JobRecord) -> None:
        spec = TaskSpec.from_json(job.spec_json)
        if await self._start_on_cluster(job, spec):
            return
        deadline_choice = self._deadline_choice(job, spec)
        planned = None
        if deadline_choice is None:
            if self.planner is not None and job.id in self.planner.unplaced_reason:
                self._note_waiting(job, f"waiting: {self.planner.unplaced_reason[job.id]}")
                return
            planned = self._planned_choice(job)
        if isinstance(deadline_choice, str):
            self._note_waiting(job, f"waiting: {deadline_choice}")
            return
        # a paid plan still waits when the lab's own (free) machines fit and are only busy
        if planned is not None and self._free_capacity_busy(spec, job, planned.candidate):
            return
        if planned is not None:
            choice = planned
            placement = dict(self.planned_placement(job) or {}, provider=planned.provider)
        elif deadline_choice is not None:
            choice, placement = deadline_choice
        else:
            outcome = self.decide(spec, job.deadline)
            candidate = outcome.candidate
            if candidate is None or outcome.provider is None:
                self._note_waiting(job, f"waiting: {outcome.decision.reason}")
                return
            if self._free_capacity_busy(spec, job, candidate, outcome):
                return
            choice = Choice(outcome.provider, candidate)
            placement = _placement_json(choice, outcome)
        self._waiting_reason.pop(job.id, None)
        if self.planner is not None:
            self.planner.planned.pop(job.id, None)  # from now on the store says where it is
        attempt = job.attempt + 1
        job = self._move(
            job.id,
            JobState.PROVISIONING,
            now=self.clock.now(),
            reason=f"placed on {choice.provider}: {placement['why']}",
            data={"attempt": attempt, "placement": placement},
            attempt=attempt,
            placement_json=json.dumps(placement),
        )
        await self._launch(job, spec, choice)

    def _free_capacity_busy(
        self,
        spec: TaskSpec,
        job: JobRecord,
        paid: Candidate,
        outcome: PlacementOutcome | None = None,
    ) -> bool:
        """Whether a paid choice should wait: the lab's own free machines can run the job
        and are only busy, and no deadline asks for speed. Records why when it waits."""
        if paid.hourly_price_micros == 0 or job.deadline is not None:
            return False
        outcome = outcome or self.decide(spec, job.deadline)
        free_but_busy = [
            v
            for v in outcome.decision.candidates
            if v.excluded == ExclusionReason.NO_QUOTA and v.hourly_price_micros == 0
        ]
        if not free_but_busy:
            return False
        where = free_but_busy[0].candidate.offer
        self._note_waiting(
            job,
            f"waiting for free capacity on {where.cloud} rather than paying "
            f"${paid.hourly_price_micros / 1_000_000:.2f}/h on {paid.offer.cloud} "
            "(give the job a deadline to let skyd pay)",
        )
        return True

    def _deadline_choice(
        self, job: JobRecord, spec: TaskSpec
    ) -> tuple[Choice, dict[str, Any]] | str | None:
        """For a job with a deadline and the `deadline` strategy, the spot policy decides
        spot-or-on-demand and where; None when it does not apply, a reason when it waits."""
        job_hours = spec.estimated_hours()
        if (
            spec.recovery_strategy != RecoveryStrategy.DEADLINE
            or job.deadline is None
            or job_hours is None
        ):
            return None
        now = self.clock.now()
        filters = [replace(f, spot=None) for f in job_filters(spec, self.market)]
        context = self.placement_context()
        outcome = self.placer.decide(
            spec,
            deadline_hours=max(0.0, (job.deadline - now) / 3600.0),
            context=context,
            filters=filters,
        )
        views = outcome.decision.candidates
        events = job_store.job_events(self.store, job.id)
        last_region = (job.placement or {}).get("region")
        last_cloud = (job.placement or {}).get("cloud")
        state = recovery.policy_state(
            views=views,
            unavailable=frozenset(self.market.unavailable),
            job_hours=job_hours,
            done_hours=recovery.running_seconds(events, now) / 3600.0,
            deadline_hours=(job.deadline - job.created_at) / 3600.0,
            elapsed_hours=(now - job.created_at) / 3600.0,
            changeover_hours=self.settings.recovery.changeover_hours,
            step_hours=self.settings.scheduler_tick_seconds / 3600.0,
            checkpoint_region=f"{last_cloud}/{last_region}" if last_region else None,
        )
        if state is None:
            return None
        policy = POLICIES[self.settings.recovery.policy]
        picked = recovery.choose(policy, state, views)
        if picked.view is None:
            return picked.reason
        candidate = picked.view.candidate
        provider = self.market.provider_for(candidate.offer.cloud)
        if provider is None:
            return f"{picked.reason}; no enabled provider for {candidate.offer.cloud}"
        choice = Choice(provider, candidate)
        placement = _placement_json(choice, outcome)
        placement.update(
            why=picked.reason,
            expected_cost=picked.view.expected_cost_micros / 1_000_000,
            expected_hours=picked.view.expected_hours,
        )
        return choice, placement

    async def _resume_provisioning(self, job: JobRecord) -> None:
        """Instances booting: start the job once they run. After a restart mid-launch with
        nothing recorded: repeat the launch with the same token (idempotent)."""
        spec = TaskSpec.from_json(job.spec_json)
        attempt_instances = [
            i
            for i in instance_store.instances_for_job(self.store, job.id)
            if i.attempt == job.attempt and i.state in instance_store.ACTIVE_INSTANCE_STATES
        ]
        if attempt_instances:
            await self._await_boot(job, spec, attempt_instances)
            return
        placement = job.placement or {}
        provider_name = placement.get("provider")
        if provider_name not in self.providers:
            job = self._move(
                job.id,
                JobState.PENDING,
                now=self.clock.now(),
                reason=f"provider {provider_name!r} is not enabled any more; placing again",
            )
            return
        offer = self.market.catalog.offer_by_key(str(placement.get("offer_key")))
        spot = bool(placement.get("spot"))
        price = offer.hourly_micros(spot) if offer is not None else None
        if offer is not None and price is not None and provider_name is not None:
            await self._launch(job, spec, Choice(provider_name, Candidate(offer, spot, price)))
            return
        job = self._move(
            job.id,
            JobState.PENDING,
            now=self.clock.now(),
            reason="the offering chosen before the restart is gone; placing again",
        )

    async def _launch(self, job: JobRecord, spec: TaskSpec, choice: Choice) -> None:
        provider = self.providers[choice.provider]
        token = f"skyd-{job.id}-{job.attempt}"
        request = LaunchRequest(
            job_id=job.id,
            attempt=job.attempt,
            client_token=token,
            offer=choice.candidate.offer,
            spot=choice.candidate.spot,
            num_nodes=spec.num_nodes,
            tags={
                TAG_MANAGED: "1",
                TAG_DAEMON: self.daemon_id,
                TAG_JOB: str(job.id),
                TAG_ATTEMPT: str(job.attempt),
                TAG_TOKEN: token,
            },
            disk_size_gib=spec.resources.disk_size,
        )
        try:
            instances = await provider.launch(request)
        except (CapacityError, QuotaError, AuthError) as exc:
            scope = exc.scope or choice.candidate.offer.cloud
            if isinstance(exc, CapacityError) and choice.candidate.spot:
                self._observed_risk(choice.candidate.offer.key, "skyd-launch-failure")
            self._blocked[scope] = self.clock.now() + BLOCK_SECONDS[type(exc)]
            job = self._move(
                job.id,
                JobState.PENDING,
                now=self.clock.now(),
                kind="launch_failed",
                reason=f"tried {choice.candidate.offer.key}: {exc.message} (blocked {scope})",
                data={"error": exc.code, "scope": scope},
            )
            return
        except (TransientError, ProviderError) as exc:
            job = self._move(
                job.id,
                JobState.PENDING,
                now=self.clock.now(),
                kind="launch_failed",
                reason=f"tried {choice.candidate.offer.key}: {exc.message}; will retry",
                data={"error": exc.code},
            )
            return

        def record(conn: Any) -> None:
            for inst in instances:
                instance_store.insert_instance(
                    conn,
                    inst,
                    job_id=job.id,
                    attempt=job.attempt,
                    client_token=token,
                    hourly_price_micros=choice.candidate.hourly_price_micros,
                    now=self.clock.now(),
                )

        names = ", ".join(i.instance_id for i in instances)
        if all(i.state == InstanceState.RUNNING for i in instances):
            job = self._move(
                job.id,
                JobState.SETTING_UP,
                now=self.clock.now(),
                reason=f"launched {names}",
                data={"instances": [i.instance_id for i in instances]},
                also=record,
            )
            await self._start_runner(job, spec)
            return
        with self.store.transaction() as conn:
            record(conn)
            event = job_store.append_event(
                conn,
                job_id=job.id,
                at=self.clock.now(),
                kind="launched",
                reason=f"launched {names}; waiting for it to boot",
                data={"instances": [i.instance_id for i in instances]},
            )
        self._emit(event)

    async def _await_boot(
        self, job: JobRecord, spec: TaskSpec, instances: list[InstanceRecord]
    ) -> None:
        by_provider: dict[str, list[str]] = {}
        for inst in instances:
            by_provider.setdefault(inst.provider, []).append(inst.instance_id)
        states: dict[str, InstanceState] = {}
        for name, ids in by_provider.items():
            provider = self.providers.get(name)
            if provider is None:
                return
            states.update(await provider.describe(ids))
        if any(s in (InstanceState.PREEMPTED, InstanceState.TERMINATED) for s in states.values()):
            await self._on_preempted(job, spec, instances, states)
            return
        if all(s == InstanceState.RUNNING for s in states.values()):
            job = self._move(
                job.id,
                JobState.SETTING_UP,
                now=self.clock.now(),
                reason=f"{', '.join(states)} running",
            )
            await self._start_runner(job, spec)

    async def _on_preempted(
        self,
        job: JobRecord,
        spec: TaskSpec,
        instances: list[InstanceRecord],
        states: Mapping[str, InstanceState],
    ) -> None:
        """The cloud took an instance back: stop what is left, record it, recover."""
        now = self.clock.now()
        lost = [i for i in instances if states.get(i.instance_id) in _GONE]
        if job.attempt > 0:
            await self._kill_attempt(job, 0.0)
        for inst in instances:
            provider = self.providers.get(inst.provider)
            if provider is not None:
                await provider.terminate([inst.instance_id])
        with self.store.transaction() as conn:
            for inst in instances:
                final = "PREEMPTED" if inst in lost else "TERMINATED"
                instance_store.set_instance_state(
                    conn, inst.provider, inst.instance_id, final, now=now
                )
        self._accrue(now)
        first = lost[0] if lost else instances[0]
        zone_scope = f"{first.cloud}/{first.region}/{first.zone}"
        if lost and first.spot:
            offer_key = f"{zone_scope}/{first.instance_type}"
            self._observed_risk(offer_key, "skyd-preemption")
        strategy = spec.recovery_strategy
        if strategy == RecoveryStrategy.FAILOVER:
            self._blocked[f"{zone_scope}/{first.instance_type}/spot"] = now + PREEMPTION_BLOCK
        elif strategy == RecoveryStrategy.EAGER_NEXT_REGION:
            self._blocked[f"{first.cloud}/{first.region}"] = now + PREEMPTION_BLOCK
        spot_s, on_demand_s = recovery.market_seconds(job_store.job_events(self.store, job.id), now)
        job = self._move(
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

    # -- running -------------------------------------------------------------

    def job_dir(self, job_id: int) -> Path:
        return self.settings.jobs_dir / str(job_id)

    def log_path(self, job_id: int) -> Path:
        return self.job_dir(job_id) / "job.log"

    def attempt_dir(self, job: JobRecord) -> Path:
        return self.job_dir(job.id) / f"attempt-{job.attempt}"

    async def _start_runner(self, job: JobRecord, spec: TaskSpec) -> None:
        job_dir = self.job_dir(job.id)
        checkpoint_dir = self.settings.checkpoints_dir / str(job.id)
        for path in (job_dir, checkpoint_dir):
            path.mkdir(parents=True, exist_ok=True)
        log_file = self.log_path(job.id)
        log_file.touch(exist_ok=True)
        may_switch = os.geteuid() == 0 or self.settings.local.run_as_owner
        run_as_other = may_switch and job.owner_uid != os.geteuid()
        uid = gid = None
        if run_as_other:
            try:
                entry = pwd.getpwuid(job.owner_uid)
            except KeyError:
                entry = None
            uid, gid = job.owner_uid, entry.pw_gid if entry else job.owner_uid
            for path in (job_dir, checkpoint_dir, log_file):
                os.chown(path, uid, gid)
        cwd = job_dir / "workdir"
        mounts = {
            str(_mount_target(cwd, job_dir, dest)): src for dest, src in spec.file_mounts.items()
        }
        env = self._job_env(job, spec, checkpoint_dir, cwd)
        command = RunCommand(
            setup=spec.setup,
            run=spec.run,
            cwd=cwd,
            env=env,
            log_path=log_file,
            workdir_source=Path(spec.workdir) if spec.workdir else None,
            file_mounts=mounts,
            uid=uid,
            gid=gid,
        )
        attempt_dir = self.attempt_dir(job)
        if self._runs_over_ssh(job):
            # remote machines: mounts land where the task says, relative to the remote job dir
            remote = replace(command, file_mounts=dict(spec.file_mounts), uid=None, gid=None)
            attempt_dir.mkdir(parents=True, exist_ok=True)
            try:
                await self._start_remote(job, attempt_dir, remote)
            except ProviderError as exc:
                # cannot run where it was launched: give the instances back, say why
                await self._release(job, kill_grace=0.0)
                job = self._move(
                    job.id,
                    JobState.FAILED,
                    now=self.clock.now(),
                    reason=f"could not start the job on its instances: {exc.message}",
                )
            return
        if run_as_other and uid is not None and gid is not None:
            attempt_dir.mkdir(parents=True, exist_ok=True)
            os.chown(attempt_dir, uid, gid)
        await self.runner.start(attempt_dir, command)

    async def _start_remote(self, job: JobRecord, attempt_dir: Path, command: RunCommand) -> None:
        """Run the attempt over SSH: on lab machines, or on the cloud VMs it launched."""
        provider_name = str((job.placement or {}).get("provider"))
        provider = self.providers[provider_name]
        if self.ssh_runner is None:
            raise ProviderError(f"no SSH runner for {provider_name} instances")
        if provider_name == "ssh":
            ids = [
                i.instance_id
                for i in instance_store.instances_for_job(self.store, job.id)
                if i.attempt == job.attempt and i.provider == "ssh"
            ]
            nodes = ssh_nodes(provider, ids)  # type: ignore[arg-type]
        else:
            login = self.settings.cloud_ssh
            if login.key_path is None:
                raise ProviderError(
                    f"jobs on {provider_name} need an SSH key to reach its VMs: set "
                    "[cloud_ssh] key_path (and user) in skyd's config"
                )
            if not isinstance(provider, InstanceLister):
                raise ProviderError(f"the {provider_name} provider cannot list its instances")
            token = f"skyd-{job.id}-{job.attempt}"
            found = sorted(
                await provider.instances({TAG_TOKEN: token}), key=lambda i: i.instance_id
            )
            nodes = cloud_nodes(
                found,
                user=login.user,
                key_path=login.key_path,
                known_hosts=login.known_hosts,
                remote_root=login.remote_root,
            )
        await self.ssh_runner.start(attempt_dir, command, nodes)

    def _runs_over_ssh(self, job: JobRecord) -> bool:
        return (job.placement or {}).get("provider") in _REMOTE_PROVIDERS

    async def _run_status(self, job: JobRecord) -> RunStatus:
        if self._runs_over_ssh(job) and self.ssh_runner is not None:
            return await self.ssh_runner.status(self.attempt_dir(job))
        return read_status(self.attempt_dir(job))

    async def _kill_attempt(self, job: JobRecord, grace: float) -> None:
        if self._runs_over_ssh(job) and self.ssh_runner is not None:
            await self.ssh_runner.kill(self.attempt_dir(job), grace)
        else:
            await self.runner.kill(self.attempt_dir(job), grace)

    def _job_env(
        self, job: JobRecord, spec: TaskSpec, checkpoint_dir: Path, cwd: Path
    ) -> dict[str, str]:
        try:
            home = pwd.getpwuid(job.owner_uid).pw_dir
        except KeyError:
            home = str(cwd)
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": home,
            "USER": job.owner_name,
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "SKYD_JOB_ID": str(job.id),
            "SKYD_JOB_NAME": job.name,
            "SKYD_ATTEMPT": str(job.attempt),
            "SKYD_CHECKPOINT_DIR": str(checkpoint_dir),
            "SKYD_NODE_RANK": "0",
            "SKYD_NUM_NODES": str(spec.num_nodes),
            "SKYD_NODE_IPS": "127.0.0.1",
            # SkyPilot's names, so scripts written for it run unchanged
            "SKYPILOT_NODE_RANK": "0",
            "SKYPILOT_NUM_NODES": str(spec.num_nodes),
            "SKYPILOT_NODE_IPS": "127.0.0.1",
            "SKYPILOT_TASK_ID": f"skyd-{job.id}-{job.attempt}",
            "PYTHONUNBUFFERED": "1",
        }
        if self.clusters is not None:
            env.update(self.clusters.job_env(job.id))
        env.update(spec.envs)
        return env

    async def _watch(self, job: JobRecord) -> None:
        remote = [
            i
            for i in instance_store.instances_for_job(self.store, job.id)
            if i.attempt == job.attempt
            and i.state in instance_store.ACTIVE_INSTANCE_STATES
            and i.provider != "local"
        ]
        if remote:
            states: dict[str, InstanceState] = {}
            for name in {i.provider for i in remote}:
                provider = self.providers.get(name)
                if provider is not None:
                    ids = [i.instance_id for i in remote if i.provider == name]
                    states.update(await provider.describe(ids))
            if any(s in _GONE for s in states.values()):
                await self._on_preempted(job, TaskSpec.from_json(job.spec_json), remote, states)
                return
        status = await self._run_status(job)
        now = self.clock.now()
        if status.phase == RunPhase.NOT_STARTED:
            # the daemon stopped between launch and spawning the shim: spawn it now
            await self._start_runner(job, TaskSpec.from_json(job.spec_json))
            return
        if status.phase == RunPhase.SETUP:
            return
        if status.phase == RunPhase.RUN:
            if job.state == JobState.SETTING_UP:
                job = self._move(
                    job.id,
                    JobState.RUNNING,
                    now=now,
                    reason="setup finished; run started",
                    started_at=status.run_started_at or now,
                )
            return
        # the attempt is over: settle the job, then give the instance back
        code: int | None
        if status.phase == RunPhase.DONE and status.setup_exit not in (0, None):
            target, reason, code = (
                JobState.FAILED_SETUP,
                f"setup exited with code {status.setup_exit}",
                status.setup_exit,
            )
        elif status.phase == RunPhase.DONE and status.run_exit == 0:
            target, reason, code = JobState.SUCCEEDED, "run exited with code 0", 0
        elif status.phase == RunPhase.DONE:
            target, reason, code = (
                JobState.FAILED,
                f"run exited with code {status.run_exit}",
                status.run_exit,
            )
        elif status.phase == RunPhase.KILLED:
            target, reason, code = JobState.FAILED, "the job was killed by a signal", None
        else:
            target, reason, code = (
                JobState.FAILED,
                "the job's runner disappeared without recording an exit status",
                None,
            )
        spec = TaskSpec.from_json(job.spec_json)
        await self._release(job, kill_grace=0.0)
        if target == JobState.FAILED and job.restarts < spec.job_recovery.max_restarts_on_errors:
            job = self._move(
                job.id,
                JobState.RECOVERING,
                now=now,
                reason=f"{reason}; restarting ({job.restarts + 1} of "
                f"{spec.job_recovery.max_restarts_on_errors} restarts on errors)",
                restarts=job.restarts + 1,
            )
            return
        if job.state == JobState.SETTING_UP and target in (JobState.SUCCEEDED, JobState.FAILED):
            # the run went by between two polls: record that it ran
            job = self._move(
                job.id,
                JobState.RUNNING,
                now=now,
                reason="setup finished; run started",
                started_at=status.run_started_at or now,
            )
        spot_s, on_demand_s = recovery.market_seconds(job_store.job_events(self.store, job.id), now)
        job = self._move(
            job.id,
            target,
            now=now,
            reason=reason,
            exit_code=code,
            data={"spot_seconds": round(spot_s, 3), "on_demand_seconds": round(on_demand_s, 3)},
        )

    async def _release(self, job: JobRecord, *, kill_grace: float) -> None:
        """Stop the job's processes (if any) and give back every instance of the job."""
        if job.attempt > 0:
            await self._kill_attempt(job, kill_grace)
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
            with self.store.transaction() as conn:
                instance_store.set_instance_state(
                    conn, inst.provider, inst.instance_id, "TERMINATED", now=now
                )
        self._accrue(now)

    def _observed_risk(self, offer_key: str, source: str) -> None:
        """A spot launch refused for capacity, or a preemption skyd saw itself: the strongest
        signal there is. The offering's preemption rate goes up (the optimizer prices it in)
        and the market history records it."""
        if self.observe is None:
            return
        held = self.market.preemptions_per_hour.get(offer_key, 0.0)
        rate = max(OBSERVED_PREEMPTIONS_PER_HOUR, 2 * held)
        self.observe(
            [
                Observation(
                    scope=offer_key,
                    at=self.clock.now(),
                    source=source,
                    preemptions_per_hour=rate,
                )
            ]
        )

    def _accrue(self, now: float) -> None:
        """Charge instances up to `now` right after one ended, so its last seconds are exact."""
        if self.accountant is not None:
            try:
                self.accountant.accrue(now)
            except Exception:
                log.exception("accrual after an instance change failed; the next pass retries")

    def _note_waiting(self, job: JobRecord, reason: str) -> None:
        if self._waiting_reason.get(job.id) == reason:
            return
        self._waiting_reason[job.id] = reason
        event = job_store.record_event(
            self.store, job.id, now=self.clock.now(), kind="waiting", reason=reason
        )
        self._emit(event)


@dataclass(frozen=True, slots=True)
class Choice:
    provider: str
    candidate: Candidate


def _mount_target(cwd: Path, job_dir: Path, dest: str) -> Path:
    """Where a file mount lands on this host: `~/x` and `x` in the job's workdir,
    `/abs/x` under the job's private `mounts/` tree (never the host's real /abs)."""
    if dest.startswith("~/"):
        return cwd / dest[2:]
    if dest.startswith("/"):
        return job_dir / "mounts" / dest.lstrip("/")
    return cwd / dest


def _placement_json(choice: Choice, outcome: PlacementOutcome) -> dict[str, Any]:
    offer = choice.candidate.offer
    price = choice.candidate.hourly_price_micros / 1_000_000
    chosen = outcome.decision.chosen
    return {
        "provider": choice.provider,
        "key": choice.candidate.key,
        "offer_key": offer.key,
        "cloud": offer.cloud,
        "region": offer.region,
        "zone": offer.zone,
        "instance_type": offer.instance_type,
        "accelerator_name": offer.accelerator_name or None,
        "accelerator_count": offer.accelerator_count,
        "spot": choice.candidate.spot,
        "hourly_price": price,
        "expected_cost": chosen.expected_cost_micros / 1_000_000 if chosen else None,
        "expected_hours": chosen.expected_hours if chosen else None,
        "why": outcome.decision.reason,
    }
