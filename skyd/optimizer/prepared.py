"""The assignment problem made small and indexed: pruned options, job classes, payers, weights.

Both the CP-SAT solver and the greedy baseline work on the same PreparedProblem, so their
plans are comparable on the same instance.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from skyd.optimizer.describe import dollars
from skyd.optimizer.plan import (
    AssignmentJob,
    AssignmentOption,
    AssignmentPlan,
    AssignmentProblem,
    Blocker,
    BlockerKind,
    JobAssignment,
    PlanStatus,
    UnplacedJob,
)

CASH = -1  # payer index meaning "paid in cash" (pools are 0..n-1)

# Running jobs are worth this many times the highest pending priority: the plan keeps them
# unless nothing else is possible.
RUNNING_WEIGHT_FACTOR = 4.0


@dataclass(frozen=True, slots=True)
class PreparedOption:
    option: AssignmentOption
    migration_micros: int  # real cost of moving there (0 for the current placement)
    objective_extra_micros: int  # migration cost plus hysteresis margin, objective only
    payers: tuple[int, ...]  # pool indices that may pay, then CASH if allowed
    quota_needs: tuple[tuple[int, int], ...]  # (quota index, amount)

    @property
    def cost(self) -> int:
        return self.option.expected_cost_micros


@dataclass(frozen=True, slots=True)
class JobClass:
    """Jobs that are interchangeable for the plan (same options, project, priority, size)."""

    job_ids: tuple[int, ...]
    template: AssignmentJob
    options: tuple[PreparedOption, ...]
    weight: float  # relative cost of leaving one of these jobs unplaced
    running: bool

    @property
    def size(self) -> int:
        return len(self.job_ids)


@dataclass(slots=True)
class Usage:
    """What a (partial) plan consumes of every quota, pool and project budget."""

    quota_used: list[int]
    pool_spent: list[int]
    project_spent: Counter[str] = field(default_factory=Counter)

    def fits(self, prep: PreparedProblem, project: str, option: PreparedOption) -> bool:
        for quota, need in option.quota_needs:
            if self.quota_used[quota] + need > prep.quota_limits[quota]:
                return False
        budget = prep.budgets.get(project)
        charge = option.cost + option.migration_micros
        return budget is None or self.project_spent[project] + charge <= budget

    def pool_has_room(self, prep: PreparedProblem, pool: int, amount: int) -> bool:
        return self.pool_spent[pool] + amount <= prep.pool_balances[pool]

    def take(self, project: str, option: PreparedOption, payer: int) -> None:
        for quota, need in option.quota_needs:
            self.quota_used[quota] += need
        if payer != CASH:
            self.pool_spent[payer] += option.cost
        self.project_spent[project] += option.cost + option.migration_micros


# (class index, option index, payer) per job id
Picks = dict[int, tuple[int, int, int]]


class PreparedProblem:
    def __init__(self, problem: AssignmentProblem) -> None:
        self.problem = problem
        settings = problem.settings
        self.quota_limits = [max(0, q.limit) for q in problem.quotas]
        self.pool_balances = [max(0, p.balance_micros) for p in problem.pools]
        self.budgets = {b.project: max(0, b.remaining_micros) for b in problem.budgets}
        self.pool_weights = _pool_weights(problem)
        self.jobs = {job.job_id: job for job in problem.jobs}
        self.classes = self._classes()
        weights = [c.weight for c in self.classes] or [1.0]
        biggest = max(
            (o.cost + o.objective_extra_micros for c in self.classes for o in c.options),
            default=1,
        )
        # Leaving any job out must cost more than its dearest option, whatever its priority.
        self.penalty_unit_micros = 2.0 * (biggest + 1) / min(weights)
        self.settings = settings

    def penalty_micros(self, job_class: JobClass) -> float:
        return self.penalty_unit_micros * job_class.weight

    def payer_weight(self, payer: int) -> float:
        return 1.0 if payer == CASH else self.pool_weights[payer]

    def effective_micros(self, option: PreparedOption, payer: int) -> float:
        return option.cost * self.payer_weight(payer) + option.objective_extra_micros

    def _classes(self) -> list[JobClass]:
        problem = self.problem
        settings = problem.settings
        pending_weights = [self._priority_weight(j.priority) for j in problem.jobs] or [1.0]
        running_weight = max(pending_weights) * RUNNING_WEIGHT_FACTOR
        groups: dict[object, list[AssignmentJob]] = {}
        order: list[object] = []
        for job in sorted(problem.jobs, key=lambda j: j.job_id):
            options = self._prepare_options(job)
            key: object
            if job.running_on is None and settings.aggregate_identical_jobs:
                key = (
                    job.project,
                    job.priority,
                    job.num_nodes,
                    tuple((o.option.key, o.cost, o.option.expected_hours) for o in options),
                )
            else:
                key = ("job", job.job_id)
            if key not in groups:
                groups[key] = []
                order.append(key)
            groups[key].append(job)
        classes = []
        for key in order:
            members = groups[key]
            template = members[0]
            running = template.running_on is not None
            classes.append(
                JobClass(
                    job_ids=tuple(j.job_id for j in members),
                    template=template,
                    options=self._prepare_options(template),
                    weight=running_weight if running else self._priority_weight(template.priority),
                    running=running,
                )
            )
        return classes

    def _priority_weight(self, priority: int) -> float:
        return float(2.0 ** (priority / self.problem.settings.priority_doubling))

    def _prepare_options(self, job: AssignmentJob) -> tuple[PreparedOption, ...]:
        problem = self.problem
        settings = problem.settings
        kept = prune_options(
            job.options, settings.options_per_group, settings.max_options_per_job, job.running_on
        )
        current = next((o for o in job.options if o.key == job.running_on), None)
        margin = (
            round(settings.migration_hysteresis * current.expected_cost_micros) if current else 0
        )
        prepared = []
        for option in kept:
            moving = job.running_on is not None and option.key != job.running_on
            migration = job.migration_cost_micros if moving else 0
            payers = tuple(
                i
                for i, pool in enumerate(problem.pools)
                if pool.covers(option) and self.pool_balances[i] > 0
            )
            if settings.allow_cash:
                payers += (CASH,)
            if not payers:
                continue
            needs = tuple(
                (i, quota.need(option.offer, job.num_nodes))
                for i, quota in enumerate(problem.quotas)
                if quota.applies_to(option.candidate)
            )
            prepared.append(
                PreparedOption(
                    option=option,
                    migration_micros=migration,
                    objective_extra_micros=migration + (margin if moving else 0),
                    payers=payers,
                    quota_needs=tuple(n for n in needs if n[1] > 0),
                )
            )
        return tuple(prepared)

    # -- turning picks into a plan ------------------------------------------------------

    def usage_of(self, picks: Picks) -> Usage:
        usage = Usage([0] * len(self.quota_limits), [0] * len(self.pool_balances))
        for job_id, (k, o, payer) in picks.items():
            usage.take(self.jobs[job_id].project, self.classes[k].options[o], payer)
        return usage

    def objective_micros(self, picks: Picks) -> float:
        placed = sum(
            self.effective_micros(self.classes[k].options[o], payer)
            for k, o, payer in picks.values()
        )
        unplaced = sum(
            self.penalty_micros(c) for c in self.classes for j in c.job_ids if j not in picks
        )
        return placed + unplaced

    def build_plan(
        self,
        picks: Picks,
        status: PlanStatus,
        *,
        objective: float | None = None,
        best_bound: float | None = None,
        solve_seconds: float = 0.0,
        model_size: dict[str, int] | None = None,
        solver_stopped_early: bool = False,
    ) -> AssignmentPlan:
        assignments: dict[int, JobAssignment] = {}
        cash = 0
        credit = {pool.pool_id: 0 for pool in self.problem.pools}
        expected = 0
        effective = 0.0
        for job_id in sorted(picks):
            k, o, payer = picks[job_id]
            job_class = self.classes[k]
            option = job_class.options[o]
            charged = option.cost + option.migration_micros
            pool_id = None if payer == CASH else self.problem.pools[payer].pool_id
            assignments[job_id] = JobAssignment(
                job_id=job_id,
                option=option.option,
                pool_id=pool_id,
                migrate=option.migration_micros > 0
                or (job_class.running and option.option.key != job_class.template.running_on),
                charged_micros=charged,
            )
            expected += charged
            if pool_id is None:
                cash += charged
                effective += charged
            else:
                credit[pool_id] += option.cost
                cash += option.migration_micros
                effective += option.cost * self.pool_weights[payer] + option.migration_micros
        usage = self.usage_of(picks)
        unplaced = {
            job_id: self.explain_unplaced(job_id, k, usage, solver_stopped_early)
            for k, c in enumerate(self.classes)
            for job_id in c.job_ids
            if job_id not in picks
        }
        objective = self.objective_micros(picks) if objective is None else objective
        gap = None
        if best_bound is not None:
            # Relative to what the plan spends, not to the whole objective: the penalties of
            # jobs that cannot be placed would otherwise make any gap look negligible.
            spend = max(
                sum(
                    self.effective_micros(self.classes[k].options[o], payer)
                    for k, o, payer in picks.values()
                ),
                1.0,
            )
            gap = max(0.0, objective - best_bound) / spend
        return AssignmentPlan(
            status=status,
            assignments=assignments,
            unplaced=dict(sorted(unplaced.items())),
            objective=objective,
            best_bound=best_bound,
            gap=gap,
            expected_cost_micros=expected,
            cash_micros=cash,
            credit_micros=credit,
            effective_cost_micros=round(effective),
            solve_seconds=solve_seconds,
            model_size=model_size or {},
        )

    def explain_unplaced(
        self, job_id: int, k: int, usage: Usage, solver_stopped_early: bool
    ) -> UnplacedJob:
        """Which constraints keep one job out, given what the rest of the plan uses."""
        job = self.jobs[job_id]
        options = self.classes[k].options
        if not job.options:
            blocker = Blocker("no_candidate", "", 0, "no candidate offering for this job")
            return UnplacedJob(job_id, f"not placed: {blocker.detail}", (blocker,))
        if not options:
            clouds = sorted({o.offer.cloud for o in job.options})
            blocker = Blocker(
                "credit",
                ",".join(clouds),
                len(job.options),
                f"no credit pool covers {', '.join(clouds)} and cash is not allowed",
            )
            return UnplacedJob(job_id, f"not placed: {blocker.detail}", (blocker,))
        found: Counter[tuple[BlockerKind, str]] = Counter()
        details: dict[tuple[BlockerKind, str], str] = {}
        for option in options:
            for kind, name, detail in self._blocking(job, option, usage, solver_stopped_early):
                found[(kind, name)] += 1
                details.setdefault((kind, name), detail)
        ranked = sorted(found.items(), key=lambda item: (-item[1], item[0]))
        blockers = tuple(
            Blocker(kind, name, count, details[(kind, name)]) for (kind, name), count in ranked
        )
        total = len(options)
        text = "; ".join(
            f"{b.detail} (on {b.candidates} of {total} candidates)" for b in blockers[:3]
        )
        return UnplacedJob(job_id, f"not placed: {text}", blockers)

    def _blocking(
        self, job: AssignmentJob, option: PreparedOption, usage: Usage, solver_stopped_early: bool
    ) -> Iterable[tuple[BlockerKind, str, str]]:
        blocked = False
        for q, need in option.quota_needs:
            limit = self.quota_limits[q]
            if usage.quota_used[q] + need > limit:
                blocked = True
                name = self.problem.quotas[q].name
                yield (
                    "quota",
                    name,
                    f"quota {name!r} is full ({usage.quota_used[q]} of {limit} used, needs {need})",
                )
        budget = self.budgets.get(job.project)
        charge = option.cost + option.migration_micros
        if budget is not None and usage.project_spent[job.project] + charge > budget:
            blocked = True
            left = budget - usage.project_spent[job.project]
            yield (
                "budget",
                job.project,
                f"budget of project {job.project!r} has {dollars(left)} left, "
                f"needs {dollars(charge)}",
            )
        if CASH not in option.payers and not any(
            usage.pool_has_room(self, p, option.cost) for p in option.payers
        ):
            blocked = True
            ids = ",".join(self.problem.pools[p].pool_id for p in option.payers)
            yield (
                "credit",
                ids,
                f"credit pool(s) {ids} exhausted (needs {dollars(option.cost)}) "
                "and cash is not allowed",
            )
        if not blocked:
            why = (
                "the solver stopped at its time limit before placing it"
                if solver_stopped_early
                else "placing it elsewhere would displace higher-value jobs"
            )
            yield ("time_limit", "", why)


def prune_options(
    options: Iterable[AssignmentOption],
    per_group: int,
    max_options: int,
    keep_key: str | None = None,
) -> list[AssignmentOption]:
    """The cheapest `per_group` options per (cloud, region, market, accelerator), at most
    `max_options` in all (cheapest groups first); `keep_key` (the current placement) stays."""
    groups: dict[tuple[str, str, bool, str], list[AssignmentOption]] = {}
    kept_current: AssignmentOption | None = None
    for option in options:
        if option.key == keep_key:
            kept_current = option
        offer = option.offer
        groups.setdefault(
            (offer.cloud, offer.region, option.candidate.spot, offer.accelerator_name), []
        ).append(option)
    chosen: list[AssignmentOption] = []
    for members in groups.values():
        members.sort(key=_option_order)
        chosen.extend(members[:per_group])
    chosen.sort(key=_option_order)
    chosen = chosen[:max_options]
    if kept_current is not None and kept_current not in chosen:
        chosen.append(kept_current)
        chosen.sort(key=_option_order)
    return chosen


def _option_order(option: AssignmentOption) -> tuple[int, float, str]:
    return (option.expected_cost_micros, option.expected_hours, option.key)


def _pool_weights(problem: AssignmentProblem) -> list[float]:
    settings = problem.settings
    expiries = sorted({_expiry(p.expires_in_hours) for p in problem.pools})
    span = max(len(expiries) - 1, 1)
    low, high = settings.credit_value_soonest, settings.credit_value_latest
    weights = []
    for pool in problem.pools:
        expiry = _expiry(pool.expires_in_hours)
        rank = expiries.index(expiry)
        weights.append(high if math.isinf(expiry) else low + (high - low) * rank / span)
    return weights


def _expiry(hours: float | None) -> float:
    return math.inf if hours is None else hours
