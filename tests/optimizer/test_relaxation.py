"""The LP relaxation path: feasible plans, bounds that hold against CP-SAT's proven optimum,
"OPTIMAL" only when proven, and a generator whose jobs are all distinct."""

from __future__ import annotations

import pytest

from bench.optimizer_problems import make_problem
from skyd.catalog import Catalog
from skyd.optimizer import SolverLimits, solve_assignment
from skyd.optimizer.prepared import PreparedProblem
from tests.optimizer.test_assignment_random_markets import (
    assert_respects_constraints,
    random_problem,
)

EXACT = SolverLimits(time_limit_seconds=20.0, gap_limit=0.0)
LP = SolverLimits(time_limit_seconds=20.0, cp_sat_max_variables=0)
SAMPLED = SolverLimits(time_limit_seconds=20.0, cp_sat_max_variables=0, lp_sample_classes=3)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("limits", [LP, SAMPLED], ids=["lp", "sampled"])
def test_relaxation_plans_are_feasible_and_bounds_hold(seed: int, limits: SolverLimits) -> None:
    problem = random_problem(seed)
    optimum = solve_assignment(problem, EXACT)
    assert optimum.status == "OPTIMAL"
    plan = solve_assignment(problem, limits)
    assert_respects_constraints(problem, plan)
    assert plan.best_bound is not None and plan.gap is not None
    # the bound is proven: no plan (so not CP-SAT's optimum) is below it; CP-SAT optimizes
    # coefficients rounded to 1e-6 of the dearest option, hence the tolerance
    tolerance = 1e-4 * max(abs(optimum.objective), 1.0)
    assert plan.best_bound <= optimum.objective + tolerance
    assert plan.objective >= optimum.objective - tolerance
    if plan.status == "OPTIMAL":
        assert plan.objective <= plan.best_bound + 1e-6
    else:
        assert plan.status == "FEASIBLE" and plan.gap > 0


def test_cp_sat_says_optimal_only_when_it_proved_it() -> None:
    loose = SolverLimits(time_limit_seconds=20.0, gap_limit=0.5)
    for seed in range(12):
        plan = solve_assignment(random_problem(seed), loose)
        if plan.status == "OPTIMAL":
            exact = solve_assignment(random_problem(seed), EXACT)
            tolerance = 1e-4 * max(abs(exact.objective), 1.0)
            assert plan.objective <= exact.objective + tolerance


def test_the_generator_makes_a_thousand_distinct_classes_and_the_lp_places_them() -> None:
    catalog = Catalog.load()
    problem = make_problem(catalog, 1000)
    prep = PreparedProblem(problem)
    assert len(prep.classes) >= 990  # nothing merges: owners, priorities, runtimes, deadlines
    assert len({job.project for job in problem.jobs}) == 8
    assert len({job.priority for job in problem.jobs}) >= 6
    assert len(problem.pools) == 5 and any(pool.region for pool in problem.pools)
    plan = solve_assignment(problem, SolverLimits(time_limit_seconds=60.0))
    assert_respects_constraints(problem, plan)
    assert plan.model_size["classes"] >= 990 and plan.gap is not None
    assert plan.placed >= 950
