"""A solver's picks turned into an AssignmentPlan, with why each job left out is left out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from skyd.optimizer.describe import dollars
from skyd.optimizer.plan import (
    AssignmentJob,
    AssignmentPlan,
    Blocker,
    BlockerKind,
    JobAssignment,
    PlanStatus,
    UnplacedJob,
)
from skyd.optimizer.prepared import Charges, Picks, PreparedOption, PreparedProblem, Usage


def usage_of(prep: PreparedProblem, picks: Picks, charges: Charges) -> Usage:
    usage = prep.empty_usage()
    for job_id, (k, o) in picks.items():
        usage.take(prep.jobs[job_id].project, prep.classes[k].options[o])
    for paid in charges.values():
        for pool, amount in paid:
            usage.pool_charged[pool] += amount
    return usage


def build_plan(
    prep: PreparedProblem,
    picks: Picks,
    charges: Charges,
    status: PlanStatus,
    *,
    objective: float | None = None,
    best_bound: float | None = None,
    solve_seconds: float = 0.0,
    model_size: dict[str, int] | None = None,
) -> AssignmentPlan:
    pools = prep.problem.pools
    assignments: dict[int, JobAssignment] = {}
    credit = {pool.pool_id: 0 for pool in pools}
    expected = 0
    credit_total = 0
    saved = 0.0
    for job_id in sorted(picks):
        k, o = picks[job_id]
        job_class = prep.classes[k]
        option = job_class.options[o]
        paid = charges.get(job_id, [])
        charged = option.cost + option.migration_micros
        assignments[job_id] = JobAssignment(
            job_id=job_id,
            option=option.option,
            credit_micros=tuple((pools[p].pool_id, amount) for p, amount in paid),
            migrate=job_class.running and option.option.key != job_class.template.running_on,
            charged_micros=charged,
        )
        expected += charged
        for p, amount in paid:
            credit[pools[p].pool_id] += amount
            credit_total += amount
            saved += (1.0 - prep.pool_weights[p]) * amount
    usage = usage_of(prep, picks, charges)
    unplaced: dict[int, UnplacedJob] = {}
    for k, job_class in enumerate(prep.classes):
        left_out = [j for j in job_class.job_ids if j not in picks]
        if left_out:
            # The jobs of one class are interchangeable: one explanation serves them all.
            why = explain_unplaced(prep, left_out[0], k, usage)
            for job_id in left_out:
                unplaced[job_id] = UnplacedJob(job_id, why.reason, why.blockers)
    if objective is None:
        objective = prep.objective_micros(picks, charges)
    gap = None
    if best_bound is not None:
        # Relative to what the plan spends (valued), not to the whole objective: the
        # penalties of jobs that cannot be placed would make any gap look negligible.
        spend = max(expected - saved, 1.0)
        gap = max(0.0, objective - best_bound) / spend
    return AssignmentPlan(
        status=status,
        assignments=assignments,
        unplaced=dict(sorted(unplaced.items())),
        objective=objective,
        best_bound=best_bound,
        gap=gap,
        expected_cost_micros=expected,
        cash_micros=expected - credit_total,
        credit_micros=credit,
        effective_cost_micros=round(expected - saved),
        solve_seconds=solve_seconds,
        model_size=model_size or {},
    )


def explain_unplaced(prep: PreparedProblem, job_id: int, k: int, usage: Usage) -> UnplacedJob:
    """Which constraints keep one job out, given what the rest of the plan uses."""
    job = prep.jobs[job_id]
    options = prep.classes[k].options
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
        for kind, name, detail in _blocking(prep, job, option, usage):
            found[(kind, name)] += 1
            details.setdefault((kind, name), detail)
    ranked = sorted(found.items(), key=lambda item: (-item[1], item[0]))
    blockers = tuple(
        Blocker(kind, name, count, details[(kind, name)]) for (kind, name), count in ranked
    )
    total = len(options)
    text = "; ".join(f"{b.detail} (on {b.candidates} of {total} candidates)" for b in blockers[:3])
    return UnplacedJob(job_id, f"not placed: {text}", blockers)


def _blocking(
    prep: PreparedProblem, job: AssignmentJob, option: PreparedOption, usage: Usage
) -> Iterable[tuple[BlockerKind, str, str]]:
    blocked = False
    for q, need in option.quota_needs:
        limit = prep.quota_limits[q]
        if usage.quota_used[q] + need > limit:
            blocked = True
            name = prep.problem.quotas[q].name
            yield (
                "quota",
                name,
                f"quota {name!r} is full ({usage.quota_used[q]} of {limit} used, needs {need})",
            )
    budget = prep.budgets.get(job.project)
    charge = option.cost + option.migration_micros
    if budget is not None and usage.project_spent[job.project] + charge > budget:
        blocked = True
        left = budget - usage.project_spent[job.project]
        yield (
            "budget",
            job.project,
            f"budget of project {job.project!r} has {dollars(left)} left, needs {dollars(charge)}",
        )
    if not prep.settings.allow_cash and usage.credit_left(prep, option) < option.cost:
        blocked = True
        ids = ",".join(prep.problem.pools[p].pool_id for p in option.pools)
        yield (
            "credit",
            ids,
            f"credit pool(s) {ids} have {dollars(usage.credit_left(prep, option))} left, "
            f"needs {dollars(option.cost)}, and cash is not allowed",
        )
    if not blocked:
        # Only a search cut short (time or gap limit) leaves out a job that fits: its
        # penalty exceeds what any of its options costs.
        yield (
            "solver_limit",
            "",
            "room is left for it; the solver stopped (time or gap limit) before placing it",
        )
