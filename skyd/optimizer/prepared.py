"""The assignment problem made small and indexed: pruned options, job classes, pools, weights.

Both the CP-SAT solver and the greedy baseline work on the same PreparedProblem, so their
plans are comparable on the same instance.

Money model: a job's expected cost may be split across credit pools of its cloud (as the
ledger does when a pool runs dry mid-job); whatever no pool covers is paid in cash. A credit
dollar counts as `value(pool)` (< 1) of a cash dollar in the objective.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from skyd.model import Candidate
from skyd.optimizer.plan import (
    AssignmentJob,
    AssignmentOption,
    AssignmentProblem,
    CreditPool,
    Quota,
    prune_options,
)

# Running jobs are worth this many times the highest pending priority: the plan keeps them
# unless nothing else is possible.
RUNNING_WEIGHT_FACTOR = 4.0
MAX_POOLS_FOR_EXACT_SPLIT = 4

_CANDIDATE = attrgetter("candidate")
_COST_AND_HOURS = attrgetter("expected_cost_micros", "expected_hours")

Picks = dict[int, tuple[int, int]]  # job id -> (class index, option index)
Charges = dict[int, list[tuple[int, int]]]  # job id -> [(pool index, micros)]


@dataclass(slots=True)
class PreparedOption:  # not frozen: tens of thousands are built per solve
    option: AssignmentOption
    migration_micros: int  # real cost of moving there (0 for the current placement)
    objective_extra_micros: int  # migration cost plus hysteresis margin, objective only
    pools: tuple[int, ...]  # pools that may pay for it, in spending order
    quota_needs: tuple[tuple[int, int], ...]  # (quota index, amount)
    cost: int = 0  # option.expected_cost_micros (a field: read millions of times per solve)

    def __post_init__(self) -> None:
        self.cost = self.option.expected_cost_micros


@dataclass(frozen=True, slots=True)
class JobClass:
    """Jobs that are interchangeable for the plan (same options, project, priority, size)."""

    job_ids: tuple[int, ...]
    template: AssignmentJob
    options: tuple[PreparedOption, ...]
    weight: float  # priority weight of leaving one of these jobs unplaced
    running: bool

    @property
    def size(self) -> int:
        return len(self.job_ids)

    @property
    def dearest_micros(self) -> int:
        return max((o.cost + o.objective_extra_micros for o in self.options), default=0) + 1


@dataclass(slots=True)
class Usage:
    """What a (partial) plan consumes of every quota, pool and project budget."""

    quota_used: list[int]
    pool_charged: list[int]
    project_spent: Counter[str] = field(default_factory=Counter)

    def fits(self, prep: PreparedProblem, project: str, option: PreparedOption) -> bool:
        for quota, need in option.quota_needs:
            if self.quota_used[quota] + need > prep.quota_limits[quota]:
                return False
        budget = prep.budgets.get(project)
        charge = option.cost + option.migration_micros
        return budget is None or self.project_spent[project] + charge <= budget

    def credit_left(self, prep: PreparedProblem, option: PreparedOption) -> int:
        return sum(prep.pool_balances[p] - self.pool_charged[p] for p in option.pools)

    def take(self, project: str, option: PreparedOption) -> None:
        for quota, need in option.quota_needs:
            self.quota_used[quota] += need
        self.project_spent[project] += option.cost + option.migration_micros

    def release(self, project: str, option: PreparedOption) -> None:
        """Undo `take` (a job moved or left out)."""
        for quota, need in option.quota_needs:
            self.quota_used[quota] -= need
        self.project_spent[project] -= option.cost + option.migration_micros

    def copy(self) -> Usage:
        return Usage(list(self.quota_used), list(self.pool_charged), Counter(self.project_spent))

    def charge(self, option: PreparedOption, caps: Sequence[int]) -> list[tuple[int, int]]:
        """Charge the option's cost to its pools in spending order, up to `caps`."""
        due = option.cost
        paid = []
        for pool in option.pools:
            if due == 0:
                break
            amount = min(due, caps[pool] - self.pool_charged[pool])
            if amount > 0:
                self.pool_charged[pool] += amount
                paid.append((pool, amount))
                due -= amount
        return paid


class PreparedProblem:
    def __init__(self, problem: AssignmentProblem) -> None:
        self.problem = problem
        self.settings = problem.settings
        self.quota_limits = [max(0, q.limit) for q in problem.quotas]
        self.pool_balances = [max(0, p.balance_micros) for p in problem.pools]
        self.budgets = {b.project: max(0, b.remaining_micros) for b in problem.budgets}
        self.pool_weights = _pool_weights(problem)
        self.jobs = {job.job_id: job for job in problem.jobs}
        self._quotas_by_cloud: dict[str, list[tuple[int, Quota]]] = {}
        for i, quota in enumerate(problem.quotas):
            self._quotas_by_cloud.setdefault(quota.cloud, []).append((i, quota))
        # Spending order: sooner expiry first; a region-scoped pool before a cloud-wide one
        # with the same expiry, since fewer jobs can use it.
        spending = sorted(
            range(len(problem.pools)),
            key=lambda i: (
                _expiry(problem.pools[i].expires_in_hours),
                problem.pools[i].region is None,
                problem.pools[i].pool_id,
            ),
        )
        self._pools_by_cloud: dict[str, list[tuple[int, CreditPool]]] = {}
        for i in spending:
            pool = problem.pools[i]
            if self.pool_balances[i] > 0:
                self._pools_by_cloud.setdefault(pool.cloud, []).append((i, pool))
        self._needs_memo: dict[tuple[int, int], tuple[tuple[int, int], ...]] = {}
        # which pools cover an option depends on its cloud, region and hours (and on the
        # job's project and owner when a pool is scoped to them)
        self._pools_memo: dict[tuple[str, str, float, object], tuple[int, ...]] = {}
        self._scoped_pools = any(
            pool.projects is not None or pool.users is not None for pool in problem.pools
        )
        self.classes = self._classes()
        weights = [c.weight for c in self.classes if c.options] or [1.0]
        # Leaving a job out costs (2 / lightest weight) x its priority weight x its dearest
        # option: always more than placing it anywhere, and more for bigger or higher jobs.
        # Tying the penalty to the job's own cost keeps the LP bound close: a fractionally
        # placed job is worth about what it costs, not an arbitrary big-M.
        self.penalty_factor = 2.0 / min(weights)

    def penalty_micros(self, job_class: JobClass) -> float:
        return self.penalty_factor * job_class.weight * job_class.dearest_micros

    def pools_of_cloud(self, cloud: str) -> list[int]:
        return [i for i, _ in self._pools_by_cloud.get(cloud, ())]

    # -- building classes --------------------------------------------------------------

    def _classes(self) -> list[JobClass]:
        problem = self.problem
        pending_weights = [self._priority_weight(j.priority) for j in problem.jobs] or [1.0]
        running_weight = max(pending_weights) * RUNNING_WEIGHT_FACTOR
        aggregate = self.settings.aggregate_identical_jobs
        # Jobs of different owners may draw different pools only when a pool is user-scoped.
        by_owner = any(pool.users is not None for pool in problem.pools)
        # First pass: jobs whose options are the very same candidate objects at the same cost
        # (built from one catalog answer), keyed with C-level maps only.
        by_identity: dict[tuple[object, ...], tuple[list[int], AssignmentJob]] = {}
        for job in sorted(problem.jobs, key=lambda j: j.job_id):
            key: tuple[object, ...] = ("job", job.job_id)
            if job.running_on is None and aggregate:
                options = job.options
                key = (
                    job.project,
                    job.priority,
                    job.num_nodes,
                    tuple(map(id, map(_CANDIDATE, options))),
                    tuple(map(_COST_AND_HOURS, options)),
                    job.owner_uid if by_owner else None,
                )
            if key in by_identity:
                by_identity[key][0].append(job.job_id)
            else:
                by_identity[key] = ([job.job_id], job)
        # Second pass, over the groups: merge groups whose candidates are equal values.
        # Only groups that agree on everything else (project, priority, size, costs) can
        # merge, so only those have their candidates compared: with distinct jobs, none.
        agree: Counter[object] = Counter(
            (t.project, t.priority, t.num_nodes, key[4], key[5])
            for key, (_, t) in by_identity.items()
            if aggregate and t.running_on is None
        )
        # Equal candidates get one small token; each candidate object is hashed once.
        tokens: dict[Candidate, int] = {}
        token_of: dict[int, int] = {}

        def token(candidate: Candidate) -> int:
            found = token_of.get(id(candidate))
            if found is None:
                found = token_of[id(candidate)] = tokens.setdefault(candidate, len(tokens))
            return found

        groups: dict[object, tuple[list[int], AssignmentJob]] = {}
        for key, (job_ids, template) in by_identity.items():
            if (
                template.running_on is None
                and aggregate
                and agree[(template.project, template.priority, template.num_nodes, key[4], key[5])]
                > 1
            ):
                key = (
                    template.project,
                    template.priority,
                    template.num_nodes,
                    tuple(token(o.candidate) for o in template.options),
                    tuple(map(_COST_AND_HOURS, template.options)),
                    template.owner_uid if by_owner else None,
                )
            if key in groups:
                groups[key][0].extend(job_ids)
            else:
                groups[key] = (job_ids, template)
        classes = []
        for job_ids, template in groups.values():
            running = template.running_on is not None
            classes.append(
                JobClass(
                    job_ids=tuple(sorted(job_ids)),
                    template=template,
                    options=self._prepare_options(template),
                    weight=running_weight if running else self._priority_weight(template.priority),
                    running=running,
                )
            )
        return classes

    def priority_weight(self, priority: int) -> float:
        """What leaving one job of this priority out weighs against a priority-0 job."""
        return self._priority_weight(priority)

    def _priority_weight(self, priority: int) -> float:
        return float(2.0 ** (priority / self.settings.priority_doubling))

    def _prepare_options(self, job: AssignmentJob) -> tuple[PreparedOption, ...]:
        settings = self.settings
        kept = prune_options(
            job.options, settings.options_per_group, settings.max_options_per_job, job.running_on
        )
        current = (
            next((o for o in job.options if o.key == job.running_on), None)
            if job.running_on is not None
            else None
        )
        margin = (
            round(settings.migration_hysteresis * current.expected_cost_micros) if current else 0
        )
        prepared = []
        for option in kept:
            moving = job.running_on is not None and option.key != job.running_on
            migration = job.migration_cost_micros if moving else 0
            offer = option.candidate.offer
            # which pools may pay depends on the job's project and owner only when a pool is
            # scoped to them
            scope = (job.project, job.owner_uid) if self._scoped_pools else None
            pools_key = (offer.cloud, offer.region, option.expected_hours, scope)
            pools = self._pools_memo.get(pools_key)
            if pools is None:
                pools = self._pools_memo[pools_key] = tuple(
                    i
                    for i, pool in self._pools_by_cloud.get(offer.cloud, ())
                    if pool.covers(option) and pool.may_pay_for(job)
                )
            if not pools and not settings.allow_cash:
                continue
            prepared.append(
                PreparedOption(
                    option=option,
                    migration_micros=migration,
                    objective_extra_micros=migration + (margin if moving else 0),
                    pools=pools,
                    quota_needs=self._quota_needs(option, job.num_nodes),
                )
            )
        return tuple(prepared)

    def _quota_needs(self, option: AssignmentOption, num_nodes: int) -> tuple[tuple[int, int], ...]:
        candidate = option.candidate
        memo_key = (id(candidate), num_nodes)
        needs = self._needs_memo.get(memo_key)
        if needs is None:
            offer = candidate.offer
            needs = tuple(
                (i, amount)
                for i, quota in self._quotas_by_cloud.get(offer.cloud, ())
                if quota.applies_to(candidate) and (amount := quota.need(offer, num_nodes)) > 0
            )
            self._needs_memo[memo_key] = needs
        return needs

    # -- money -------------------------------------------------------------------------

    def empty_usage(self) -> Usage:
        return Usage([0] * len(self.quota_limits), [0] * len(self.pool_balances))

    def charge_credit(self, picks: Picks, caps: Sequence[int]) -> Charges:
        """Spread credit over placed jobs, at most `caps` per pool: jobs with the fewest
        usable pools first, so a region-scoped pool goes to the jobs that need it."""
        usage = self.empty_usage()
        order = sorted(
            picks, key=lambda j: (len(self.classes[picks[j][0]].options[picks[j][1]].pools), j)
        )
        return {
            job_id: usage.charge(self.classes[picks[job_id][0]].options[picks[job_id][1]], caps)
            for job_id in order
        }

    def objective_micros(self, picks: Picks, charges: Charges) -> float:
        placed = sum(
            self.classes[k].options[o].cost + self.classes[k].options[o].objective_extra_micros
            for k, o in picks.values()
        )
        saved = sum(
            (1.0 - self.pool_weights[pool]) * amount
            for paid in charges.values()
            for pool, amount in paid
        )
        unplaced = sum(
            self.penalty_micros(c) for c in self.classes for j in c.job_ids if j not in picks
        )
        return placed - saved + unplaced


def _pool_weights(problem: AssignmentProblem) -> list[float]:
    """Value of a credit dollar per pool: linear in expiry rank, soonest = lowest."""
    settings = problem.settings
    expiries = sorted({_expiry(p.expires_in_hours) for p in problem.pools})
    span = max(len(expiries) - 1, 1)
    low, high = settings.credit_value_soonest, settings.credit_value_latest
    weights = []
    for pool in problem.pools:
        expiry = _expiry(pool.expires_in_hours)
        rank = expiries.index(expiry)
        weight = high if math.isinf(expiry) else low + (high - low) * rank / span
        # Whole percents: the solver's objective then values credit exactly.
        weights.append(round(weight, 2))
    return weights


def _expiry(hours: float | None) -> float:
    return math.inf if hours is None else hours


def pool_sets(pools: list[int]) -> list[frozenset[int]]:
    """The pool sets whose credit constraints the models state: every subset (Hall's
    condition, exact) for up to MAX_POOLS_FOR_EXACT_SPLIT pools, else singles and all."""
    if len(pools) <= MAX_POOLS_FOR_EXACT_SPLIT:
        return [
            frozenset(p for bit, p in enumerate(pools) if mask >> bit & 1)
            for mask in range(1, 1 << len(pools))
        ]
    return [frozenset([p]) for p in pools] + [frozenset(pools)]
