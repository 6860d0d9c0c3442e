"""Seeded random markets: every plan respects every constraint, and CP-SAT never loses to greedy."""

from __future__ import annotations

import random

import pytest

from skyd.model import dollars_to_micros
from skyd.optimizer import (
    AssignmentJob,
    AssignmentPlan,
    AssignmentProblem,
    AssignmentSettings,
    CreditPool,
    ProjectBudget,
    Quota,
    SolverLimits,
    greedy_assignment,
    solve_assignment,
)
from tests.optimizer.crafted_market import option

CLOUD_REGIONS = [
    ("aws", "us-east-1"),
    ("aws", "us-west-2"),
    ("gcp", "us-central1"),
    ("gcp", "europe-west4"),
]


def random_problem(seed: int) -> AssignmentProblem:
    rng = random.Random(seed)
    jobs = []
    for job_id in range(rng.randint(3, 25)):
        places = rng.sample(CLOUD_REGIONS, rng.randint(1, len(CLOUD_REGIONS)))
        options = tuple(
            option(
                f"{rng.uniform(0.5, 20):.2f}",
                cloud=cloud,
                region=region,
                count=rng.choice((1, 1, 2, 4)),
                hours=rng.choice((1.0, 5.0, 30.0)),
                spot=rng.random() < 0.3,
            )
            for cloud, region in places
        )
        jobs.append(
            AssignmentJob(
                job_id,
                options,
                project=rng.choice(("a", "b")),
                priority=rng.choice((-10, 0, 0, 10)),
                num_nodes=rng.choice((1, 1, 2)),
            )
        )
    quotas = [
        Quota(f"{c}/{r}", cloud=c, region=r, resource="gpus", limit=rng.randint(0, 12))
        for c, r in CLOUD_REGIONS
    ]
    quotas.append(Quota("aws spot", cloud="aws", resource="instances", limit=3, spot=True))
    pools = [
        CreditPool("aws-1", "aws", dollars_to_micros(rng.randint(0, 60)), expires_in_hours=20),
        CreditPool("aws-2", "aws", dollars_to_micros(rng.randint(0, 60)), expires_in_hours=200),
        CreditPool("gcp-eu", "gcp", dollars_to_micros(rng.randint(0, 60)), region="europe-west4"),
    ]
    budgets = [ProjectBudget("a", dollars_to_micros(rng.randint(10, 150)))]
    settings = AssignmentSettings(allow_cash=rng.random() < 0.8)
    return AssignmentProblem(
        jobs=jobs, quotas=quotas, pools=pools, budgets=budgets, settings=settings
    )


def assert_respects_constraints(problem: AssignmentProblem, plan: AssignmentPlan) -> None:
    jobs = {job.job_id: job for job in problem.jobs}
    assert set(plan.assignments) | set(plan.unplaced) == set(jobs)
    assert not set(plan.assignments) & set(plan.unplaced)
    for quota in problem.quotas:
        used = sum(
            quota.need(a.option.offer, jobs[a.job_id].num_nodes)
            for a in plan.assignments.values()
            if quota.applies_to(a.option.candidate)
        )
        assert used <= max(quota.limit, 0), quota.name
    pools = {pool.pool_id: pool for pool in problem.pools}
    charged = dict.fromkeys(pools, 0)
    for a in plan.assignments.values():
        assert a.option in jobs[a.job_id].options
        assert sum(amount for _, amount in a.credit_micros) <= a.option.expected_cost_micros
        for pool_id, amount in a.credit_micros:
            assert pools[pool_id].covers(a.option)
            charged[pool_id] += amount
        if not problem.settings.allow_cash:
            assert a.cash_micros == 0
    for pool_id, pool in pools.items():
        assert charged[pool_id] <= pool.balance_micros
        assert plan.credit_micros[pool_id] == charged[pool_id]
    for budget in problem.budgets:
        spent = sum(
            a.charged_micros
            for a in plan.assignments.values()
            if jobs[a.job_id].project == budget.project
        )
        assert spent <= budget.remaining_micros
    for unplaced in plan.unplaced.values():
        assert unplaced.blockers and unplaced.reason.startswith("not placed: ")


@pytest.mark.parametrize("seed", range(25))
def test_random_market(seed: int) -> None:
    problem = random_problem(seed)
    greedy = greedy_assignment(problem)
    best = solve_assignment(problem, SolverLimits(time_limit_seconds=20.0, gap_limit=0.0))
    assert_respects_constraints(problem, greedy)
    assert_respects_constraints(problem, best)
    assert best.status == "OPTIMAL"
    # CP-SAT optimizes coefficients rounded to 1e-6 of the dearest option, per variable.
    tolerance = 1e-4 * max(abs(greedy.objective), 1.0)
    assert best.objective <= greedy.objective + tolerance
