"""Records of the global assignment: jobs, quotas, credit pools and budgets in; a plan out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Literal

from skyd.model import Candidate, Offer, Placement
from skyd.optimizer.describe import dollars
from skyd.optimizer.single import PlacementDecision
from skyd.optimizer.vectorized import RowViews

QuotaResource = Literal["gpus", "vcpus", "instances"]
BlockerKind = Literal["no_candidate", "quota", "credit", "budget", "solver_limit"]


@dataclass(frozen=True, slots=True)
class AssignmentOption:
    """One place a job could run, with what it is expected to cost there (all nodes)."""

    candidate: Candidate
    expected_cost_micros: int  # includes the egress of the job's data to this place
    expected_hours: float
    egress_cost_micros: int = 0

    @property
    def key(self) -> str:
        return self.candidate.key

    @property
    def offer(self) -> Offer:
        return self.candidate.offer


def options_from_decision(
    decision: PlacementDecision,
    per_group: int = 2,
    max_options: int = 48,
    keep_key: str | None = None,
) -> tuple[AssignmentOption, ...]:
    """The feasible candidates of a single-job decision, as assignment options, pre-pruned.

    For an `ordered` request only the winning alternative's candidates are kept (the plan must
    not skip the user's first choice); for `any_of` every feasible candidate is. Keeps the
    cheapest `per_group` per (cloud, region, market, accelerator) and `max_options` in all
    (plus `keep_key`, a running job's current placement): compute this once per job, when it
    is placed or its market changes, not on every global re-optimization.
    """
    candidates = decision.candidates
    if isinstance(candidates, RowViews) and decision.preferred is not None and keep_key is None:
        # columnar decision: prune on the columns, build views only for what is kept
        preferred = decision.preferred
        if decision.alternative is not None and decision.ordered:
            chosen_alt = decision.alternative
            preferred = tuple(i for i in preferred if int(candidates.alt[i]) == chosen_alt)
        views = candidates.pruned(preferred, per_group, max_options)
    else:
        views = decision.feasible
        if decision.alternative is not None and decision.ordered:
            views = [v for v in views if v.alternative == decision.alternative]
    options = [
        AssignmentOption(
            v.candidate, v.expected_cost_micros, v.expected_hours, v.egress_cost_micros
        )
        for v in views
    ]
    return tuple(prune_options(options, per_group, max_options, keep_key))


def prune_options(
    options: Sequence[AssignmentOption],
    per_group: int,
    max_options: int,
    keep_key: str | None = None,
) -> list[AssignmentOption]:
    """The cheapest `per_group` options per (cloud, region, market, accelerator), at most
    `max_options` in all (cheapest groups first); `keep_key` (the current placement) stays."""
    ranked = sorted(options, key=_option_order)
    seen: dict[tuple[str, str, bool, str], int] = {}
    chosen: list[AssignmentOption] = []
    for option in ranked:
        offer = option.candidate.offer
        group = (offer.cloud, offer.region, option.candidate.spot, offer.accelerator_name)
        taken = seen.get(group, 0)
        if taken < per_group:
            seen[group] = taken + 1
            chosen.append(option)
            if len(chosen) == max_options:
                break
    if keep_key is not None and all(o.key != keep_key for o in chosen):
        current = [o for o in options if o.key == keep_key]
        chosen = sorted(chosen + current[:1], key=_option_order)
    return chosen


# Cost, then hours; equal options keep their input order (the catalog's deterministic order).
_option_order = attrgetter("expected_cost_micros", "expected_hours")


@dataclass(frozen=True, slots=True)
class AssignmentJob:
    """A pending job, or a running job that may migrate (`running_on` = its Candidate.key).

    For a running job the options' costs cover its *remaining* runtime, and
    `migration_cost_micros` is what a move costs (checkpoint, relaunch, setup, lost progress).

    Leaving a job out costs 2 ** (priority / priority_doubling) x its dearest option (scaled so
    it always exceeds placing it): every job that fits is placed, and when capacity binds the
    plan keeps the jobs with the most priority-weighted value. Equal-sized jobs therefore go by
    priority; a much bigger job can outweigh a slightly higher-priority small one. The greedy
    baseline goes strictly by priority.
    """

    job_id: int
    options: tuple[AssignmentOption, ...]
    project: str = ""
    priority: int = 0
    num_nodes: int = 1
    running_on: str | None = None
    migration_cost_micros: int = 0
    owner_uid: int | None = None  # matters only for pools scoped to users

    def __post_init__(self) -> None:
        if self.num_nodes < 1:
            raise ValueError(f"job {self.job_id}: num_nodes {self.num_nodes!r} must be >= 1")
        if self.migration_cost_micros < 0:
            raise ValueError(
                f"job {self.job_id}: migration_cost_micros {self.migration_cost_micros!r}"
                " must be >= 0"
            )
        for option in self.options:
            if option.expected_cost_micros < 0:
                raise ValueError(
                    f"job {self.job_id}: option {option.key} has a negative expected cost"
                )


@dataclass(frozen=True, slots=True)
class Quota:
    """Headroom of one cloud quota for the jobs in this plan (limit minus usage outside it).

    Applies to every option in `cloud` (and `region`, market `spot`, accelerator if given).
    A negative headroom (already over quota) counts as zero.
    """

    name: str
    cloud: str
    resource: QuotaResource
    limit: int
    region: str | None = None
    spot: bool | None = None
    accelerator_name: str | None = None

    def __post_init__(self) -> None:
        if self.resource not in ("gpus", "vcpus", "instances"):
            raise ValueError(
                f"quota {self.name!r}: resource {self.resource!r} is unknown;"
                " use 'gpus', 'vcpus' or 'instances'"
            )

    def applies_to(self, candidate: Candidate) -> bool:
        offer = candidate.offer
        return (
            offer.cloud == self.cloud
            and (self.region is None or offer.region == self.region)
            and (self.spot is None or candidate.spot == self.spot)
            and (self.accelerator_name is None or offer.accelerator_name == self.accelerator_name)
        )

    def need(self, offer: Offer, num_nodes: int) -> int:
        if self.resource == "gpus":
            return offer.accelerator_count * num_nodes
        if self.resource == "vcpus":
            return math.ceil(offer.vcpus * num_nodes)
        return num_nodes


@dataclass(frozen=True, slots=True)
class CreditPool:
    """Credits on one cloud (optionally one region); `expires_in_hours` None = never.

    `balance_micros` is what is left to plan with; zero or negative means nothing.
    """

    pool_id: str
    cloud: str
    balance_micros: int
    expires_in_hours: float | None = None
    region: str | None = None
    projects: tuple[str, ...] | None = None  # None: any project's jobs may draw it
    users: tuple[int, ...] | None = None  # None: any user's jobs may draw it

    def may_pay_for(self, job: AssignmentJob) -> bool:
        """Whether `job`'s project and owner are within the pool's scope."""
        if self.projects is not None and job.project not in self.projects:
            return False
        return self.users is None or job.owner_uid in self.users

    def covers(self, option: AssignmentOption) -> bool:
        offer = option.offer
        # Conservative: a pool that lapses before the job is expected to end is not planned
        # for it at all, though the ledger could charge it until expiry.
        return (
            offer.cloud == self.cloud
            and (self.region is None or offer.region == self.region)
            and (self.expires_in_hours is None or self.expires_in_hours >= option.expected_hours)
        )


@dataclass(frozen=True, slots=True)
class ProjectBudget:
    """What a project may still spend (expected cost of its placed jobs, whoever pays)."""

    project: str
    remaining_micros: int


@dataclass(frozen=True, slots=True)
class AssignmentSettings:
    """How money and priorities are valued, and how far the model is pruned.

    A credit dollar is worth `credit_value_soonest` of a cash dollar for the soonest-expiring
    pool, rising linearly (by expiry rank) to `credit_value_latest` for the latest one, so
    expiring credit is spent first and credit before cash.
    """

    credit_value_soonest: float = 0.5
    credit_value_latest: float = 0.9
    allow_cash: bool = True
    migration_hysteresis: float = 0.05  # a move must also save this share of the current cost
    options_per_group: int = 1  # kept per (cloud, region, market, accelerator) group
    max_options_per_job: int = 16
    priority_doubling: float = 10.0  # +10 priority doubles the cost of leaving a job unplaced
    aggregate_identical_jobs: bool = True

    def __post_init__(self) -> None:
        for name in ("credit_value_soonest", "credit_value_latest"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"AssignmentSettings.{name}: {value!r} must be within 0..1")
        if self.credit_value_soonest > self.credit_value_latest:
            raise ValueError(
                "AssignmentSettings: credit_value_soonest must not exceed credit_value_latest"
                " (sooner-expiring credit is worth less)"
            )
        if self.options_per_group < 1 or self.max_options_per_job < 1:
            raise ValueError("AssignmentSettings: options_per_group/max_options_per_job >= 1")
        if self.migration_hysteresis < 0:
            raise ValueError("AssignmentSettings.migration_hysteresis must be >= 0")
        if self.priority_doubling <= 0:
            raise ValueError("AssignmentSettings.priority_doubling must be > 0")


@dataclass(frozen=True, slots=True)
class AssignmentProblem:
    jobs: Sequence[AssignmentJob]
    quotas: Sequence[Quota] = ()
    pools: Sequence[CreditPool] = ()
    budgets: Sequence[ProjectBudget] = ()
    settings: AssignmentSettings = field(default_factory=AssignmentSettings)

    def __post_init__(self) -> None:
        seen: set[int] = set()
        for job in self.jobs:
            if job.job_id in seen:
                raise ValueError(f"AssignmentProblem.jobs: job id {job.job_id} appears twice")
            seen.add(job.job_id)
        pool_ids = [pool.pool_id for pool in self.pools]
        if len(set(pool_ids)) != len(pool_ids):
            raise ValueError("AssignmentProblem.pools: pool ids must be unique")
        projects = [budget.project for budget in self.budgets]
        if len(set(projects)) != len(projects):
            raise ValueError("AssignmentProblem.budgets: one budget per project")


@dataclass(frozen=True, slots=True)
class JobAssignment:
    """Where one job goes and who pays: credit pools first (soonest-expiring), rest in cash."""

    job_id: int
    option: AssignmentOption
    credit_micros: tuple[tuple[str, int], ...] = ()  # (pool id, amount) of its expected cost
    migrate: bool = False
    charged_micros: int = 0  # expected cost plus the migration cost when moving

    @property
    def cash_micros(self) -> int:
        return self.charged_micros - sum(amount for _, amount in self.credit_micros)

    @property
    def pool_id(self) -> str | None:
        """The pool paying the largest share, or None when it is all cash."""
        if not self.credit_micros:
            return None
        return max(self.credit_micros, key=lambda item: (item[1], item[0]))[0]

    @property
    def placement(self) -> Placement:
        payers = [f"pool {pool} {dollars(amount)}" for pool, amount in self.credit_micros]
        if self.cash_micros > 0 or not payers:
            payers.append(f"cash {dollars(self.cash_micros)}")
        return Placement(
            offer=self.option.offer,
            spot=self.option.candidate.spot,
            hourly_price_micros=self.option.candidate.hourly_price_micros,
            expected_cost_micros=self.option.expected_cost_micros,
            expected_hours=self.option.expected_hours,
            egress_cost_micros=self.option.egress_cost_micros,
            reason="global plan, paid by "
            + ", ".join(payers)
            + (", migrating" if self.migrate else ""),
        )


@dataclass(frozen=True, slots=True)
class Blocker:
    """One constraint that kept a job out of the plan, and on how many of its candidates."""

    kind: BlockerKind
    name: str  # quota name, pool id(s), project, or ""
    candidates: int
    detail: str


@dataclass(frozen=True, slots=True)
class UnplacedJob:
    job_id: int
    reason: str
    blockers: tuple[Blocker, ...]


# OPTIMAL: proven within SolverLimits.gap_limit; FEASIBLE: the best found when time ran out;
# GREEDY: greedy_assignment(); GREEDY_FALLBACK: CP-SAT found nothing in time, greedy plan used.
PlanStatus = Literal["OPTIMAL", "FEASIBLE", "GREEDY", "GREEDY_FALLBACK"]


@dataclass(frozen=True, slots=True)
class AssignmentPlan:
    """The outcome: where each job goes and who pays, what was left out and why, how good it is.

    `objective` and `best_bound` are in effective micro-dollars (credit valued below cash)
    plus the priority-weighted penalties of unplaced jobs; `gap` = (objective - bound) /
    objective. Greedy plans have no bound (`best_bound` None, `gap` None).
    """

    status: PlanStatus
    assignments: dict[int, JobAssignment]
    unplaced: dict[int, UnplacedJob]
    objective: float
    best_bound: float | None
    gap: float | None
    expected_cost_micros: int  # everything placed, at list value (incl. migration costs)
    cash_micros: int
    credit_micros: dict[str, int]  # charged per pool
    effective_cost_micros: int  # cash + credit at its configured value
    solve_seconds: float = 0.0
    model_size: dict[str, int] = field(default_factory=dict)

    @property
    def placed(self) -> int:
        return len(self.assignments)
