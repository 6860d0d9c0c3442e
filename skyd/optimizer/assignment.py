"""Global assignment of all pending (and migratable running) jobs with OR-Tools CP-SAT.

Model, over the PreparedProblem (pruned options, identical jobs aggregated into classes):

    n[k,o,p] in 0..|class k|   jobs of class k placed on option o, paid by payer p
                               (a credit pool covering o, or cash)
    sum_{o,p} n[k,o,p] <= |k|                       each job placed at most once
    sum need(o,q) * n[k,o,p] <= headroom(q)         per quota (GPUs, vCPUs, instances)
    sum cost(k,o) * n[k,o,p] <= balance(p)          per credit pool
    sum (cost + migration) * n[k,o,p] <= budget(P)  per project
    minimize  sum (cost * value(p) + migration + hysteresis) * n
            + sum penalty(k) * (|k| - sum n[k,...])

value(p) is 1 for cash and below 1 for credit (less for sooner-expiring pools); penalty(k) grows
with priority and exceeds any option's cost, so a job is left out only when a constraint forces
it. Costs enter the objective scaled so the dearest option is ~10^6 units (int64-safe at any
size); constraints use exact micro-dollars.

Determinism: with `num_workers=1` and a fixed `random_seed` CP-SAT's search is reproducible;
with more workers we set `interleave_search`, which keeps it reproducible. The result is the
same run to run whenever the search ends on optimality, on the gap limit, or on
`deterministic_time_limit`; a wall-clock `time_limit_seconds` that binds can cut the search at
different points on a loaded machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from skyd.optimizer.greedy import greedy_picks
from skyd.optimizer.plan import AssignmentPlan, AssignmentProblem
from skyd.optimizer.prepared import Picks, PreparedProblem

OBJECTIVE_UNITS_FOR_DEAREST_OPTION = 1_000_000


@dataclass(frozen=True, slots=True)
class SolverLimits:
    time_limit_seconds: float = 2.0
    num_workers: int = 1
    random_seed: int = 0
    # Stop once (objective - bound) is within this share of the greedy plan's spend.
    gap_limit: float = 0.005
    deterministic_time_limit: float | None = None
    hint_greedy: bool = True

    def __post_init__(self) -> None:
        if not self.time_limit_seconds > 0:
            raise ValueError(f"SolverLimits.time_limit_seconds {self.time_limit_seconds!r} > 0")
        if self.num_workers < 1:
            raise ValueError(f"SolverLimits.num_workers {self.num_workers!r} must be >= 1")
        if self.gap_limit < 0:
            raise ValueError(f"SolverLimits.gap_limit {self.gap_limit!r} must be >= 0")


def solve_assignment(
    problem: AssignmentProblem, limits: SolverLimits | None = None
) -> AssignmentPlan:
    """Best plan found within the limits; the greedy plan if CP-SAT finds none in time."""
    from ortools.sat.python import cp_model  # lazy: single placement never pays for it

    limits = limits or SolverLimits()
    prep = PreparedProblem(problem)
    greedy = greedy_picks(prep)
    if not prep.classes:
        return prep.build_plan({}, "OPTIMAL", best_bound=0.0)

    model = cp_model.CpModel()
    dearest = max(
        (o.cost + o.objective_extra_micros for c in prep.classes for o in c.options), default=1
    )
    scale = max(1.0, dearest / OBJECTIVE_UNITS_FOR_DEAREST_OPTION)
    variables: list[Any] = []
    coefficients: list[int] = []
    index: list[tuple[int, int, int]] = []  # (class, option, payer) per variable
    quota_terms: list[list[tuple[Any, int]]] = [[] for _ in prep.quota_limits]
    pool_terms: list[list[tuple[Any, int]]] = [[] for _ in prep.pool_balances]
    budget_terms: dict[str, list[tuple[Any, int]]] = {p: [] for p in prep.budgets}
    offset = 0
    for k, job_class in enumerate(prep.classes):
        penalty = math.ceil(prep.penalty_micros(job_class) / scale)
        offset += penalty * job_class.size
        project = job_class.template.project
        class_vars = []
        for o, option in enumerate(job_class.options):
            for payer in option.payers:
                if job_class.size == 1:
                    var = model.new_bool_var(f"x{k}_{o}_{payer}")
                else:
                    var = model.new_int_var(0, job_class.size, f"n{k}_{o}_{payer}")
                class_vars.append(var)
                variables.append(var)
                index.append((k, o, payer))
                coefficients.append(round(prep.effective_micros(option, payer) / scale) - penalty)
                for q, need in option.quota_needs:
                    quota_terms[q].append((var, need))
                if payer >= 0:
                    pool_terms[payer].append((var, option.cost))
                if project in budget_terms:
                    budget_terms[project].append((var, option.cost + option.migration_micros))
        if not class_vars:
            continue
        if job_class.size == 1:
            model.add_at_most_one(class_vars)
        else:
            model.add(sum(class_vars) <= job_class.size)
    for terms, limit in (
        *zip(quota_terms, prep.quota_limits, strict=True),
        *zip(pool_terms, prep.pool_balances, strict=True),
        *((budget_terms[p], prep.budgets[p]) for p in sorted(budget_terms)),
    ):
        if terms and sum(c * _upper(v) for v, c in terms) > limit:
            model.add(
                cp_model.LinearExpr.weighted_sum([v for v, _ in terms], [c for _, c in terms])
                <= limit
            )
    model.minimize(cp_model.LinearExpr.weighted_sum(variables, coefficients) + offset)

    position = {key: i for i, key in enumerate(index)}
    if limits.hint_greedy:
        hinted = [0] * len(variables)
        for k, o, payer in greedy.values():
            hinted[position[(k, o, payer)]] += 1
        for var, value in zip(variables, hinted, strict=True):
            model.add_hint(var, value)

    solver = cp_model.CpSolver()
    params = solver.parameters
    params.max_time_in_seconds = limits.time_limit_seconds
    params.num_workers = limits.num_workers
    params.random_seed = limits.random_seed
    if limits.num_workers > 1:
        params.interleave_search = True
    if limits.deterministic_time_limit is not None:
        params.max_deterministic_time = limits.deterministic_time_limit
    greedy_spend = sum(
        prep.effective_micros(prep.classes[k].options[o], payer) for k, o, payer in greedy.values()
    )
    params.absolute_gap_limit = max(1.0, limits.gap_limit * greedy_spend / scale)
    status = solver.solve(model)
    size = {
        "jobs": len(prep.jobs),
        "classes": len(prep.classes),
        "variables": len(variables),
        "constraints": len(model.proto.constraints),
    }
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return prep.build_plan(
            greedy,
            "GREEDY_FALLBACK",
            solve_seconds=solver.wall_time,
            model_size=size,
            solver_stopped_early=True,
        )
    picks = _picks(prep, index, [solver.value(v) for v in variables])
    optimal = status == cp_model.OPTIMAL
    return prep.build_plan(
        picks,
        "OPTIMAL" if optimal else "FEASIBLE",
        objective=solver.objective_value * scale,
        best_bound=solver.best_objective_bound * scale,
        solve_seconds=solver.wall_time,
        model_size=size,
        solver_stopped_early=not optimal,
    )


def _upper(var: Any) -> int:
    domain = var.proto.domain
    return int(domain[-1])


def _picks(prep: PreparedProblem, index: list[tuple[int, int, int]], values: list[int]) -> Picks:
    """Hand out each class's counts to its jobs: lowest job id gets the cheapest option."""
    counts: dict[int, list[tuple[int, int, int]]] = {}
    for (k, o, payer), value in zip(index, values, strict=True):
        if value > 0:
            counts.setdefault(k, []).append((o, payer, value))
    picks: Picks = {}
    for k, entries in counts.items():
        job_ids = iter(prep.classes[k].job_ids)
        for o, payer, value in sorted(entries):
            for _ in range(value):
                picks[next(job_ids)] = (k, o, payer)
    return picks
