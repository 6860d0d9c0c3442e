"""One planner pass as pure work: read the waiting queue, decide each job's options, solve the
assignment and say what changed — never on the event loop.

`PlanCore` runs in the planner's own process (skyd.scheduler.plan_child) or, for a store
without a file, in a worker thread. It reads the store on a connection of its own and
writes nothing: it returns a `PlanResult` (new planned placements, re-placements to
record, running jobs' moves proposed or declined, why jobs stay unplaced), small enough
for the loop to apply in a few milliseconds. A running job's move is priced with the
changeover the spot policy plans with (`changeover_for_clouds`, a `ChangeoverLog` over
the same store: measured of recent launches), and the plan's verdict on it names that
changeover (skyd.scheduler.plan_moves). Its caches (decisions per market state, per
resource shape) and its copy of the planned placements live here, next to the work that
uses them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from skyd.model import Candidate, JobState, Offer
from skyd.optimizer import (
    AssignmentJob,
    AssignmentOption,
    AssignmentPlan,
    AssignmentProblem,
    CreditPool,
    ProjectBudget,
    Quota,
    SolverLimits,
    greedy_assignment,
    options_from_decision,
    solve_assignment,
)
from skyd.scheduler import recovery
from skyd.scheduler.changeover import Changeover
from skyd.scheduler.placement import PlacementContext, PlacementOutcome
from skyd.scheduler.plan_moves import MoveNote, MoveNotes, MovePrice
from skyd.spec import TaskSpec
from skyd.store import Store
from skyd.store import jobs as job_store
from skyd.store.records import JobRecord

HYSTERESIS = 0.05  # a waiting job moves only for a saving above 5 %
MAX_SHAPES = 1024
MAX_PLANNED_JOBS = 2000

Decide = Callable[[TaskSpec, float | None, PlacementContext], PlacementOutcome]
Options = tuple[tuple[AssignmentOption, ...], dict[str, int]]
Decided = tuple[tuple[object, ...], tuple[AssignmentOption, ...], dict[str, int]]
# the changeover a job that may run on these clouds plans with (ChangeoverLog.for_clouds)
ChangeoverFor = Callable[[Iterable[str]], Changeover]


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """What the loop hands a pass: the coupling constraints and the conditions of now."""

    quotas: tuple[Quota, ...]
    pools: tuple[CreditPool, ...]
    budgets: tuple[ProjectBudget, ...]
    context: PlacementContext
    now: float


@dataclass(frozen=True, slots=True)
class PlanResult:
    """What a pass changed, for the loop to apply (writes, events, the planner's memory)."""

    status: str
    coupled: bool  # the global (coupled) model was solved
    planned: dict[int, dict[str, Any]] = field(default_factory=dict)  # new planned placements
    # re-placements to record: (job, placement, event reason)
    writes: tuple[tuple[int, dict[str, Any], str], ...] = ()
    # running jobs' moves proposed, or declined as not worth their cost
    moves: tuple[MoveNote, ...] = ()
    assigned: tuple[int, ...] = ()
    unplaced: dict[int, str] = field(default_factory=dict)
    forgotten: tuple[int, ...] = ()  # waiting no more (started, ended, cancelled)


class PlanCore:
    """The planner's work and memory (see the module docstring). `decide` places one spec
    under a captured context; `offer_of` finds a running job's offering by its placement;
    `changeover_for_clouds` prices a running job's move."""

    def __init__(
        self,
        reader: Store,
        decide: Decide,
        *,
        limits: SolverLimits,
        changeover_for_clouds: ChangeoverFor,
        offer_of: Callable[[dict[str, Any]], Offer | None],
    ) -> None:
        self._reader = reader
        self._decide = decide
        self._limits = limits
        self._changeover_for = changeover_for_clouds
        self._offer_of = offer_of
        self.planned: dict[int, dict[str, Any]] = {}
        # job → (conditions it was decided under, its options, feasible option costs)
        self._decided: dict[int, Decided] = {}
        self._by_shape: dict[tuple[object, ...], Decided] = {}
        self._full_pass_conditions: tuple[object, ...] | None = None
        self._newest_planned = 0
        self._notes = MoveNotes()
        self._prices: dict[int, MovePrice] = {}  # this pass's running jobs

    def compute(self, request: PlanRequest) -> PlanResult | None:
        """One pass; None when there is nothing to plan."""
        context = request.context
        conditions = _conditions(context)
        movable = self._movable_jobs()
        self._notes.keep_only(job.id for job in movable)
        coupled = bool(request.quotas or request.pools or request.budgets or movable)
        # Nothing couples the jobs and nothing changed since the last full pass: the plans
        # made then still stand, so only jobs submitted since need one.
        incremental = not coupled and conditions == self._full_pass_conditions
        jobs = job_store.jobs_in_states(
            self._reader,
            (JobState.RECOVERING, JobState.PENDING),
            limit=MAX_PLANNED_JOBS,
            after_id=self._newest_planned if incremental else None,
        )
        forgotten: list[int] = []
        if not incremental:
            self._full_pass_conditions = conditions
            live = {job.id for job in jobs}
            for job_id in [j for j in self._decided if j not in live]:
                del self._decided[job_id]
            for job_id in [j for j in self.planned if j not in live]:
                del self.planned[job_id]
                forgotten.append(job_id)
        if not jobs and not movable:
            return PlanResult("EMPTY", coupled, forgotten=tuple(forgotten)) if forgotten else None
        if jobs:
            self._newest_planned = max(self._newest_planned, max(job.id for job in jobs))
        plan, feasible = self._solve(request, jobs, movable, coupled)
        result = self._changes(plan, {job.id: job for job in jobs}, feasible)
        return PlanResult(
            plan.status,
            coupled,
            planned=result[0],
            writes=result[1],
            moves=result[2],
            assigned=tuple(plan.assignments),
            unplaced={job_id: u.reason for job_id, u in plan.unplaced.items()},
            forgotten=tuple(forgotten),
        )

    def _movable_jobs(self) -> list[JobRecord]:
        """Running jobs that allow a migration (then the solver must weigh moves); the text
        is looked at before any JSON is parsed: most specs never say `migrate`."""
        return [
            job
            for job in job_store.jobs_in_states(self._reader, (JobState.RUNNING,))
            if job.placement
            and '"migrate"' in job.spec_json
            and json.loads(job.spec_json).get("migrate")
        ]

    def _solve(
        self,
        request: PlanRequest,
        jobs: Sequence[JobRecord],
        running: Sequence[JobRecord],
        coupled: bool,
    ) -> tuple[AssignmentPlan, dict[int, dict[str, int]]]:
        """Each job's options, then one global assignment."""
        assignment_jobs = []
        feasible: dict[int, dict[str, int]] = {}  # job → option key → expected cost now
        context = request.context
        conditions = _conditions(context)
        self._prices.clear()
        for job in running:
            moving = self._running_job(job, context, request.now)
            if moving is not None:
                assignment_jobs.append(moving)
        for job in jobs:
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
            quotas=request.quotas,
            pools=request.pools,
            budgets=request.budgets,
        )
        if not coupled:
            # nothing couples the jobs: each one's best option is the global optimum, which
            # the greedy pass computes exactly (no model to build, no solver time)
            return greedy_assignment(problem), feasible
        return solve_assignment(problem, self._limits), feasible

    def _running_job(
        self, job: JobRecord, context: PlacementContext, now: float
    ) -> AssignmentJob | None:
        """A running job as the optimizer sees it: options priced for the runtime it has
        left, staying put free, moving at the cost of one changeover (plus hysteresis): the
        one measured of recent launches on the clouds the job may run on (where it runs
        and where its options are), as the spot policy pools the clouds it chooses between."""
        spec = TaskSpec.from_json(job.spec_json)
        placement = job.placement or {}
        current = str(placement.get("key"))
        estimate = spec.estimated_hours() or 1.0
        ran = max(0.0, now - (job.started_at or now)) / 3600.0
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
        others = tuple(options)
        stay_micros = round(hourly * estimate * left * spec.num_nodes)
        options.append(AssignmentOption(stay, stay_micros, estimate))
        changeover = self._changeover_for(
            {str(placement.get("cloud") or offer.cloud)} | {o.offer.cloud for o in others}
        )
        migration_micros = round(hourly * changeover.hours * spec.num_nodes)
        self._prices[job.id] = MovePrice(current, stay_micros, migration_micros, changeover, others)
        return AssignmentJob(
            job_id=job.id,
            options=tuple(options),
            project=job.project or "",
            priority=job.priority,
            num_nodes=spec.num_nodes,
            running_on=current,
            migration_cost_micros=migration_micros,
            owner_uid=job.owner_uid,
        )

    def _options_for(
        self, job: JobRecord, context: PlacementContext, conditions: tuple[object, ...]
    ) -> Options | None:
        """A waiting job's placement options (cheapest first) and each feasible one's cost,
        decided once per market state (and once per resource shape for a sweep); None for
        jobs the spot policy owns."""
        known = self.planned.get(job.id) or job.placement
        keep = known.get("key") if known else None
        cached = self._decided.get(job.id)
        if cached is not None and cached[0] == (*conditions, keep):
            return cached[1], cached[2]
        spec = TaskSpec.from_json(job.spec_json)
        if recovery.policy_driven(spec, job):
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

    def _changes(
        self,
        plan: AssignmentPlan,
        jobs: dict[int, JobRecord],
        feasible: dict[int, dict[str, int]],
    ) -> tuple[
        dict[int, dict[str, Any]],
        tuple[tuple[int, dict[str, Any], str], ...],
        tuple[MoveNote, ...],
    ]:
        """The plan's changes: new planned placements (kept in memory), re-placements worth
        recording, and what it says of running jobs' moves (proposed or declined)."""
        planned: dict[int, dict[str, Any]] = {}
        writes: list[tuple[int, dict[str, Any], str]] = []
        moves: list[MoveNote] = []
        for job_id, assignment in plan.assignments.items():
            if job_id not in jobs:  # a running job: it only ever gets a proposal (or not)
                price = self._prices.get(job_id)
                note = None if price is None else self._notes.note(job_id, price, assignment)
                if note is not None:
                    moves.append(note)
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
            placement = planned_placement_of(assignment, plan)
            self.planned[job_id] = planned[job_id] = placement
            if not old:
                # a first plan lives in memory (shown by `skyd show`, used at launch): a long
                # queue costs no write per job; only real re-placements are recorded
                continue
            why = placement["why"]
            if old.get("key") != new_key:
                why = f"{why}; was {old.get('key')} at ${old.get('hourly_price', 0):.4f}/h"
            writes.append((job_id, placement, f"re-placed on {new_key}: {why}"))
        return planned, tuple(writes), tuple(moves)


def _conditions(context: PlacementContext) -> tuple[object, ...]:
    return (
        context.market_version,
        context.data_version,
        context.blocked,
        context.full_providers,
    )


def _nodes(job: JobRecord) -> int:
    try:
        return int(json.loads(job.spec_json).get("num_nodes", 1))
    except (ValueError, AttributeError):
        return 1


def planned_placement_of(assignment: Any, plan: AssignmentPlan) -> dict[str, Any]:
    option = assignment.option
    offer = option.offer
    return {
        "provider": None,
        "planned": True,
        "key": option.key,
        **offer.placement_fields(),
        "spot": option.candidate.spot,
        "hourly_price": option.candidate.hourly_price_micros / 1_000_000,
        "expected_cost": option.expected_cost_micros / 1_000_000,
        "egress_cost": option.egress_cost_micros / 1_000_000,
        "expected_hours": option.expected_hours,
        "why": assignment.placement.reason + f" ({plan.status.lower()})",
    }
