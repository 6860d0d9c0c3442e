"""Re-optimization: the waiting queue placed as a whole (CP-SAT) whenever conditions change.

Triggers are events on the bus — a submit, a job ending (capacity freed), a market change,
a failed launch (a scope got blocked), a preemption, quota or credit changes — debounced so
a burst costs one solve. The solve runs in a worker thread; the store is only read and
written on the loop. A waiting job's planned placement changes only when the new one is
cheaper by more than the hysteresis margin or the old one is no longer possible, so jobs do
not flap between near-equal offerings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from skyd.clock import Clock
from skyd.events import EventBus
from skyd.model import TERMINAL_STATES, Candidate, JobState, Offer
from skyd.optimizer import (
    AssignmentJob,
    AssignmentOption,
    AssignmentPlan,
    AssignmentProblem,
    CreditPool,
    JobAssignment,
    ProjectBudget,
    Quota,
    SolverLimits,
    UnplacedJob,
    greedy_assignment,
    options_from_decision,
    solve_assignment,
)
from skyd.scheduler.placement import PlacementContext, PlacementOutcome
from skyd.spec import TaskSpec
from skyd.spec.task import RecoveryStrategy
from skyd.store import Store
from skyd.store import jobs as job_store
from skyd.store.records import JobRecord

log = logging.getLogger("skyd.planner")

_TERMINAL_VALUES = frozenset(s.value for s in TERMINAL_STATES)
_WAITING_STATES = (JobState.PENDING, JobState.RECOVERING)
REPLAN_KINDS = frozenset({"submitted", "market", "launch_failed", "preempted", "quota", "credit"})
HYSTERESIS = 0.05  # a waiting job moves only for a saving above 5 %
MIN_SOLVE_INTERVAL_SECONDS = 1.0
MAX_SHAPES = 1024
UNCOUPLED_PAGE = 25  # waiting jobs planned per loop turn when nothing couples them
APPLY_CHUNK = 20  # placements written per transaction before the loop serves others
MAX_PLANNED_JOBS = 2000
DEBOUNCE_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class PlanInputs:
    """What one solve needs, read on the loop and handed to the worker thread."""

    jobs: Sequence[JobRecord]
    quotas: Sequence[Quota]
    pools: Sequence[CreditPool]
    budgets: Sequence[ProjectBudget]
    context: PlacementContext
    running: Sequence[JobRecord] = ()


class Planner:
    def __init__(
        self,
        *,
        store: Store,
        bus: EventBus,
        clock: Clock,
        decide: Callable[[TaskSpec, float | None, PlacementContext], PlacementOutcome],
        context: Callable[[], PlacementContext],
        quotas: Callable[[], Sequence[Quota]] = lambda: (),
        pools: Callable[[], Sequence[CreditPool]] = lambda: (),
        budgets: Callable[[], Sequence[ProjectBudget]] = lambda: (),
        time_limit_seconds: float = 2.0,
        changeover_hours: float = 0.2,
        offer_of: Callable[[dict[str, Any]], Offer | None] = lambda _placement: None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self._decide = decide
        self._context = context
        self._quotas = quotas
        self._pools = pools
        self._budgets = budgets
        self._limits = SolverLimits(time_limit_seconds=time_limit_seconds)
        self._wake = asyncio.Event()
        self.unplaced_reason: dict[int, str] = {}
        # waiting job → its planned placement (first plans are kept here, not written)
        self.planned: dict[int, dict[str, Any]] = {}
        # job → (conditions it was decided under, its options, feasible option costs)
        self._decided: dict[
            int, tuple[tuple[object, ...], tuple[AssignmentOption, ...], dict[str, int]]
        ] = {}
        self._last_solve = -MIN_SOLVE_INTERVAL_SECONDS
        self._reader: Store | None = None
        self._full_pass_conditions: tuple[object, ...] | None = None
        self._newest_planned = 0
        self._proposed: dict[int, str] = {}
        self._changeover_hours = changeover_hours
        self._offer_of = offer_of
        self._by_shape: dict[
            tuple[object, ...],
            tuple[tuple[object, ...], tuple[AssignmentOption, ...], dict[str, int]],
        ] = {}
        self.last_plan: AssignmentPlan | None = None
        self.solves = 0  # passes that produced a plan
        self.passes = 0  # every re-optimization pass, whatever it found
        self.global_solves = 0  # passes that solved the coupled (global) model off the loop

    def request(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        async with self.bus.subscribe() as queue:
            watcher = asyncio.create_task(self._watch(queue))
            try:
                while True:
                    await self._wake.wait()
                    await self.clock.sleep(DEBOUNCE_SECONDS)
                    # under a steady stream of triggers, solve at most this often
                    wait = self._last_solve + MIN_SOLVE_INTERVAL_SECONDS - self.clock.now()
                    if wait > 0:
                        await self.clock.sleep(wait)
                    self._wake.clear()
                    self._last_solve = self.clock.now()
                    try:
                        await self.replan_once()
                    except Exception:
                        log.exception("re-optimization failed; the next trigger retries")
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    async def _watch(self, queue: asyncio.Queue[Any]) -> None:
        while True:
            event = await queue.get()
            # job events carry job states; other events (clusters) carry their own
            ended = event.job_id is not None and event.state in _TERMINAL_VALUES
            if event.kind in REPLAN_KINDS or ended:
                self._wake.set()

    async def replan_once(self) -> AssignmentPlan | None:
        self.passes += 1
        if not (self._quotas() or self._pools() or self._budgets() or self._any_movable()):
            return await self._replan_uncoupled(self._context())
        inputs = PlanInputs(
            (),
            tuple(self._quotas()),
            tuple(self._pools()),
            tuple(self._budgets()),
            self._context(),
        )
        # reading a long queue is work too: it happens in the worker, on its own connection
        outcome = await asyncio.to_thread(self._read_and_solve, inputs)
        if outcome is None:
            return None
        plan, feasible, jobs = outcome
        self.last_plan = plan
        self.solves += 1
        self.global_solves += 1
        await self._apply(plan, {job.id: job for job in jobs}, feasible)
        return plan

    def _read_and_solve(
        self, inputs: PlanInputs
    ) -> tuple[AssignmentPlan, dict[int, dict[str, int]], list[JobRecord]] | None:
        if self._reader is None:
            self._reader = self.store.reader() if self.store.path is not None else self.store
        context = inputs.context
        conditions = (
            context.market_version,
            context.data_version,
            context.blocked,
            context.full_providers,
        )
        coupled = bool(inputs.quotas or inputs.pools or inputs.budgets)
        # Nothing couples the jobs and nothing changed since the last full pass: the plans
        # made then still stand, so only jobs submitted since need one.
        incremental = not coupled and conditions == self._full_pass_conditions
        jobs = job_store.jobs_in_states(
            self._reader,
            (JobState.RECOVERING, JobState.PENDING),
            limit=MAX_PLANNED_JOBS,
            after_id=self._newest_planned if incremental else None,
        )
        if not incremental:
            self._full_pass_conditions = conditions
            live = {job.id for job in jobs}
            for job_id in [j for j in self._decided if j not in live]:
                del self._decided[job_id]  # started, ended or cancelled
            for job_id in [j for j in self.planned if j not in live]:
                del self.planned[job_id]
        # running jobs that allow it (migrate: true) may be moved when conditions change
        movable = [] if incremental else self._movable_jobs()
        if not jobs and not movable:
            return None
        if jobs:
            self._newest_planned = max(self._newest_planned, max(job.id for job in jobs))
        plan, feasible = self._solve(replace(inputs, jobs=jobs, running=movable))
        return plan, feasible, jobs

    def _any_movable(self) -> bool:
        """Whether any running job allows a migration (then the solver must weigh moves)."""
        return any(
            job.placement and json.loads(job.spec_json).get("migrate")
            for job in job_store.jobs_in_states(self.store, (JobState.RUNNING,))
        )

    def _movable_jobs(self) -> list[JobRecord]:
        assert self._reader is not None
        return [
            job
            for job in job_store.jobs_in_states(self._reader, (JobState.RUNNING,))
            if job.placement and json.loads(job.spec_json).get("migrate")
        ]

    def _running_job(self, job: JobRecord, context: PlacementContext) -> AssignmentJob | None:
        """A running job as the optimizer sees it: options priced for the runtime it has
        left, staying put free, moving at the cost of one changeover (plus hysteresis)."""
        spec = TaskSpec.from_json(job.spec_json)
        placement = job.placement or {}
        current = str(placement.get("key"))
        estimate = spec.estimated_hours() or 1.0
        ran = max(0.0, self.clock.now() - (job.started_at or self.clock.now())) / 3600.0
        left = max(0.1, 1.0 - ran / estimate)
        outcome = self._decide(spec, job.deadline, context)
        # moving copies the data again: its egress is paid in full, the compute for what is left
        options = [
            AssignmentOption(
                o.candidate,
                round((o.expected_cost_micros - o.egress_cost_micros) * left)
                + o.egress_cost_micros,
                o.expected_hours,
                o.egress_cost_micros,
            )
            for o in options_from_decision(outcome.decision)
            if o.key != current
        ]
        offer = self._offer_of(placement)
        if offer is None:
            return None
        spot = bool(placement.get("spot"))
        hourly = int(float(placement.get("hourly_price") or 0) * 1_000_000)
        if spot and context.signals is not None:
            # a spot job pays the price of the moment, not the one it launched at
            hourly = context.signals.spot_price_micros.get(offer.key, hourly)
        stay = Candidate(offer, spot, hourly)
        options.append(
            AssignmentOption(stay, round(hourly * estimate * left * spec.num_nodes), estimate)
        )
        return AssignmentJob(
            job_id=job.id,
            options=tuple(options),
            project=job.project or "",
            priority=job.priority,
            num_nodes=spec.num_nodes,
            running_on=current,
            migration_cost_micros=round(hourly * self._changeover_hours * spec.num_nodes),
            owner_uid=job.owner_uid,
        )

    def _options_for(
        self, job: JobRecord, context: PlacementContext, conditions: tuple[object, ...]
    ) -> tuple[tuple[AssignmentOption, ...], dict[str, int]] | None:
        """A waiting job's placement options (cheapest first) and each feasible one's cost,
        decided once per market state (and once per resource shape for a sweep); None for
        jobs the spot policy owns."""
        known = self.planned.get(job.id) or job.placement
        keep = known.get("key") if known else None
        cached = self._decided.get(job.id)
        if cached is not None and cached[0] == (*conditions, keep):
            return cached[1], cached[2]
        spec = TaskSpec.from_json(job.spec_json)
        if policy_driven(spec, job):
            return None
        # jobs of a sweep ask for the same resources: decide those once
        shape = (
            spec.resources.model_dump_json(),
            spec.num_nodes,
            spec.objective,
            tuple(sorted(spec.estimated_runtime.items())),
            keep,
            # the same resources with other data: another egress term
            tuple(m.url for m in spec.storage_mounts.values()),
            tuple(sorted(spec.inputs.items())),
            tuple(sorted(spec.outputs.items())),
        )
        shared = self._by_shape.get(shape) if job.deadline is None else None
        if shared is not None and shared[0] == conditions:
            options, costs = shared[1], shared[2]
        else:
            outcome = self._decide(spec, job.deadline, context)
            options = options_from_decision(outcome.decision, keep_key=keep)
            costs = {
                view.candidate.key: view.expected_cost_micros for view in outcome.decision.feasible
            }
            if job.deadline is None:
                if len(self._by_shape) >= MAX_SHAPES:
                    self._by_shape.clear()
                self._by_shape[shape] = (conditions, options, costs)
        self._decided[job.id] = ((*conditions, keep), options, costs)
        return options, costs

    async def _replan_uncoupled(self, context: PlacementContext) -> AssignmentPlan | None:
        """Nothing couples the jobs (no quotas, pools, budgets or movable running jobs): each
        job's own cheapest option is the optimum. Worked through on the loop a page at a
        time — a CPU-bound worker thread would starve the loop of the GIL (the convoy
        effect) and stall every request while it runs."""
        conditions = (
            context.market_version,
            context.data_version,
            context.blocked,
            context.full_providers,
        )
        incremental = conditions == self._full_pass_conditions
        self._full_pass_conditions = conditions
        after = self._newest_planned if incremental else 0
        seen: set[int] = set()
        last: AssignmentPlan | None = None
        while len(seen) < MAX_PLANNED_JOBS:
            page = job_store.waiting_jobs_page(self.store, after_id=after, limit=UNCOUPLED_PAGE)
            if not page:
                break
            after = page[-1].id
            assignments: dict[int, JobAssignment] = {}
            unplaced: dict[int, UnplacedJob] = {}
            feasible: dict[int, dict[str, int]] = {}
            for job in page:
                seen.add(job.id)
                decided = self._options_for(job, context, conditions)
                if decided is None:
                    continue
                options, feasible[job.id] = decided
                if options:
                    best = options[0]
                    assignments[job.id] = JobAssignment(
                        job.id, best, charged_micros=best.expected_cost_micros
                    )
                else:
                    unplaced[job.id] = UnplacedJob(job.id, "no candidate offering", ())
            last = _own_best_plan(assignments, unplaced)
            await self._apply(last, {job.id: job for job in page}, feasible)
            await asyncio.sleep(0)  # requests go first between pages
        if seen:
            self._newest_planned = max(self._newest_planned, max(seen))
        if not incremental:
            for cache in (self._decided, self.planned):
                for job_id in [j for j in cache if j not in seen]:
                    del cache[job_id]  # started, ended or cancelled
        if last is not None:
            self.last_plan = last
            self.solves += 1
        return last

    def _solve(self, inputs: PlanInputs) -> tuple[AssignmentPlan, dict[int, dict[str, int]]]:
        """Pure work off the loop: each job's options, then one global assignment."""
        assignment_jobs = []
        feasible: dict[int, dict[str, int]] = {}  # job → option key → expected cost now
        context = inputs.context
        conditions = (
            context.market_version,
            context.data_version,
            context.blocked,
            context.full_providers,
        )
        for running in inputs.running:
            moving = self._running_job(running, context)
            if moving is not None:
                assignment_jobs.append(moving)
        for job in inputs.jobs:
            decided = self._options_for(job, context, conditions)
            if decided is None:
                continue  # the spot policy decides when and where these run
            options, costs = decided
            feasible[job.id] = costs
            assignment_jobs.append(
                AssignmentJob(
                    job_id=job.id,
                    options=options,
                    project=job.project or "",
                    priority=job.priority,
                    num_nodes=max(1, _nodes(job)),
                    owner_uid=job.owner_uid,
                )
            )

        problem = AssignmentProblem(
            jobs=assignment_jobs,
            quotas=inputs.quotas,
            pools=inputs.pools,
            budgets=inputs.budgets,
        )
        if not (problem.quotas or problem.pools or problem.budgets or inputs.running):
            # nothing couples the jobs: each one's best option is the global optimum, which
            # the greedy pass computes exactly (no model to build, no solver time)
            return greedy_assignment(problem), feasible
        return solve_assignment(problem, self._limits), feasible

    async def _apply(
        self,
        plan: AssignmentPlan,
        jobs: dict[int, JobRecord],
        feasible: dict[int, dict[str, int]],
    ) -> None:
        """Record the plan's changes. A burst of new jobs means many writes: they go in
        chunks, each one transaction, with the loop free to serve requests between them."""
        now = self.clock.now()
        changes: list[tuple[int, dict[str, Any], str]] = []
        for job_id, assignment in plan.assignments.items():
            if job_id not in jobs:  # a running job: it only ever gets a proposal
                if assignment.migrate and self._proposed.get(job_id) != assignment.option.key:
                    self._proposed[job_id] = assignment.option.key
                    event = job_store.record_event(
                        self.store,
                        job_id,
                        now=now,
                        kind="migration_proposed",
                        reason=f"moving to {assignment.option.key} would save more than the "
                        f"move costs ({assignment.placement.reason})",
                        data={"to": assignment.option.key},
                    )
                    self.bus.publish(event)
                continue
            job = jobs[job_id]
            old = self.planned.get(job_id) or job.placement or {}
            new_key = assignment.option.key
            if old.get("key") == new_key and old.get("planned"):
                continue
            # compare with what the old offering would cost NOW, if it is still possible
            old_cost_now = feasible.get(job_id, {}).get(str(old.get("key")))
            new_cost = assignment.option.expected_cost_micros
            if (
                old.get("planned")
                and old_cost_now is not None
                and new_cost >= old_cost_now * (1 - HYSTERESIS)
            ):
                continue  # not worth moving: near-equal offerings
            placement = _planned_placement(assignment, plan)
            self.planned[job_id] = placement
            if not old:
                # a first plan lives in memory (shown by `skyctl show`, used at launch): a
                # long queue costs no write per job; only real re-placements are recorded
                continue
            verb = "re-placed"
            why = placement["why"]
            if old and old.get("key") != new_key:
                why = f"{why}; was {old.get('key')} at ${old.get('hourly_price', 0):.4f}/h"
            changes.append((job_id, placement, f"{verb} on {new_key}: {why}"))
        for start in range(0, len(changes), APPLY_CHUNK):
            chunk = changes[start : start + APPLY_CHUNK]
            events = []
            with self.store.transaction() as conn:
                for job_id, placement, reason in chunk:
                    # the plan was made from a snapshot: leave jobs that started since alone
                    cur = conn.execute(
                        "UPDATE jobs SET placement_json = ? WHERE id = ? AND state IN (?, ?)",
                        (json.dumps(placement), job_id, *(s.value for s in _WAITING_STATES)),
                    )
                    if cur.rowcount:
                        events.append(
                            job_store.append_event(
                                conn,
                                job_id=job_id,
                                at=now,
                                kind="placement",
                                reason=reason,
                                data={"placement": placement, "plan_status": plan.status},
                            )
                        )
            for event in events:
                self.bus.publish(event)
            await asyncio.sleep(0)
        for job_id in plan.assignments:
            self.unplaced_reason.pop(job_id, None)
        for job_id, unplaced in plan.unplaced.items():
            # kept in memory and shown with the job (`skyctl show`): a long queue waiting
            # for capacity would otherwise write an event per job on every pass
            self.unplaced_reason[job_id] = unplaced.reason


def _own_best_plan(
    assignments: dict[int, JobAssignment], unplaced: dict[int, UnplacedJob]
) -> AssignmentPlan:
    total = sum(a.option.expected_cost_micros for a in assignments.values())
    return AssignmentPlan(
        status="OPTIMAL",
        assignments=assignments,
        unplaced=unplaced,
        objective=float(total),
        best_bound=float(total),
        gap=0.0,
        expected_cost_micros=total,
        cash_micros=total,
        credit_micros={},
        effective_cost_micros=total,
    )


def _nodes(job: JobRecord) -> int:
    try:
        return int(json.loads(job.spec_json).get("num_nodes", 1))
    except (ValueError, AttributeError):
        return 1


def policy_driven(spec: TaskSpec, job: JobRecord) -> bool:
    """Jobs whose spot/on-demand timing the deadline policy owns (not the global plan)."""
    return (
        spec.recovery_strategy == RecoveryStrategy.DEADLINE
        and job.deadline is not None
        and spec.estimated_hours() is not None
    )


def _planned_placement(assignment: Any, plan: AssignmentPlan) -> dict[str, Any]:
    option = assignment.option
    offer = option.offer
    return {
        "provider": None,
        "planned": True,
        "key": option.key,
        "offer_key": offer.key,
        "cloud": offer.cloud,
        "region": offer.region,
        "zone": offer.zone,
        "instance_type": offer.instance_type,
        "accelerator_name": offer.accelerator_name or None,
        "accelerator_count": offer.accelerator_count,
        "spot": option.candidate.spot,
        "hourly_price": option.candidate.hourly_price_micros / 1_000_000,
        "expected_cost": option.expected_cost_micros / 1_000_000,
        "egress_cost": option.egress_cost_micros / 1_000_000,
        "expected_hours": option.expected_hours,
        "why": assignment.placement.reason + f" ({plan.status.lower()})",
    }
