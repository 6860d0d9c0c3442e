"""Global assignment of all pending (and migratable running) jobs with OR-Tools CP-SAT.

Model, over the PreparedProblem (pruned options, identical jobs aggregated into classes):

    x[k,o] in 0..|class k|      jobs of class k placed on option o
    y[p]   in 0..balance(p)/U   credit charged to pool p (in units of U micro-dollars)

    sum_o x[k,o] <= |k|                               each job placed at most once
    sum need(o,q) * x[k,o] <= headroom(q)             per quota (GPUs, vCPUs, instances)
    sum (cost + migration) * x[k,o] <= budget(P)      per project
    U * sum_{p in S} y[p] <= sum_{o usable by S} cost(o) * x[k,o]
                                                      per cloud, per set S of its pools: credit
                                                      only pays for jobs it may pay for
    (no cash allowed: spend in a cloud <= its pools' balances, and U * sum y covers it)
    minimize  sum (cost + migration + hysteresis) * x - sum (1 - value(p)) * U * y[p]
            + sum penalty(k) * (|k| - sum_o x[k,o])

value(p) < 1 is what a credit dollar is worth against cash (less for sooner-expiring pools),
so credit that would otherwise expire is spent first. The set constraints are Hall's
condition for splitting job costs over pools; exact for up to 4 pools per cloud, beyond that
only single pools and the whole cloud are constrained. penalty(k) exceeds any option's cost
and grows with priority and with the job's own cost (see AssignmentJob), so a job is left out
only when a constraint forces it. Money in the
constraints is exact micro-dollars; the objective is scaled so the dearest option is ~10^6
units (int64-safe at any size).

Determinism: with `num_workers=1` (the default) and a fixed `random_seed` CP-SAT's search is
reproducible. With more workers it is only reproducible with `interleave_workers=True`
(CP-SAT's `interleave_search`), which is much slower. Either way the result is the same run to
run when the search ends on optimality, on the gap limit or on `deterministic_time_limit`; a
wall-clock `time_limit_seconds` that binds can cut the search at different points on a loaded
machine (the plan is then still feasible, just possibly different).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from skyd.optimizer.greedy import greedy_picks
from skyd.optimizer.plan import AssignmentPlan, AssignmentProblem
from skyd.optimizer.plan_building import build_plan
from skyd.optimizer.prepared import Charges, Picks, PreparedProblem, pool_sets
from skyd.optimizer.relaxation import solve_by_relaxation

CREDIT_UNITS_PER_DEAREST_OPTION = 10_000  # U = dearest option / this, in micro-dollars
OBJECTIVE_UNITS_PER_CREDIT_UNIT = 100  # so credit values resolve to 1 %
OBJECTIVE_SAFE_LIMIT = 2**60  # leaves CP-SAT headroom below int64 for sums and bounds


@dataclass(frozen=True, slots=True)
class SolverLimits:
    time_limit_seconds: float = 2.0
    num_workers: int = 1
    random_seed: int = 0
    # Stop once (objective - bound) is within this share of the greedy plan's spend.
    gap_limit: float = 0.005
    deterministic_time_limit: float | None = None
    # Measured on the benchmark (1,000 jobs): CP-SAT's presolve and its "hint search" phase
    # each cost seconds and gain nothing on this model, whose LP is already tight; without
    # them it reaches < 1 % in well under a second. The greedy plan remains the fallback.
    presolve: bool = False
    hint_greedy: bool = False
    # With several workers CP-SAT's portfolio races on wall time and is not reproducible;
    # interleaving keeps it reproducible but, measured here, is many times slower.
    interleave_workers: bool = False
    # Models with more (class, option) variables than this go to the LP relaxation and
    # rounding (skyd.optimizer.relaxation): CP-SAT finds no solution in 2 s at 1,000 distinct
    # jobs (16,000 variables), and building its model alone takes most of a second.
    cp_sat_max_variables: int = 4000
    # More classes than this: the LP of an even sample of this many prices the rest.
    lp_sample_classes: int = 2500

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
    start = time.perf_counter()
    prep = PreparedProblem(problem)
    if not any(c.options for c in prep.classes):
        return build_plan(prep, {}, {}, "OPTIMAL", best_bound=prep.objective_micros({}, {}))
    if sum(len(c.options) for c in prep.classes) > limits.cp_sat_max_variables:
        plan = solve_by_relaxation(prep, start + limits.time_limit_seconds, limits)
        if plan is not None:
            return plan
    greedy, greedy_charges = greedy_picks(prep)

    built = _AssignmentModel(prep, cp_model)
    if limits.hint_greedy:
        built.hint(greedy, greedy_charges)
    solver = cp_model.CpSolver()
    params = solver.parameters
    params.max_time_in_seconds = limits.time_limit_seconds
    params.num_workers = limits.num_workers
    params.random_seed = limits.random_seed
    if limits.num_workers > 1 and limits.interleave_workers:
        params.interleave_search = True
    if limits.deterministic_time_limit is not None:
        params.max_deterministic_time = limits.deterministic_time_limit
    params.cp_model_presolve = limits.presolve
    greedy_spend = sum(prep.classes[k].options[o].cost for k, o in greedy.values())
    # gap_limit 0 asks for a proven optimum (CP-SAT's objective is integral: a gap < 1 unit)
    params.absolute_gap_limit = limits.gap_limit * built.units(greedy_spend)
    status = solver.solve(built.model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return build_plan(
            prep,
            greedy,
            greedy_charges,
            "GREEDY_FALLBACK",
            solve_seconds=solver.wall_time,
            model_size=built.size(),
        )
    picks = _picks(prep, built.x_index, [solver.value(v) for v in built.x_vars])
    caps = list(prep.pool_balances)  # credit-only: every dollar must come from a pool
    if prep.settings.allow_cash:
        for p, var in built.y_vars.items():
            caps[p] = solver.value(var) * built.unit
    # OPTIMAL only when proven: the solver closed its gap to zero, not to the gap limit
    proven = (
        status == cp_model.OPTIMAL and solver.objective_value - solver.best_objective_bound < 1.0
    )
    return build_plan(
        prep,
        picks,
        prep.charge_credit(picks, caps),
        "OPTIMAL" if proven else "FEASIBLE",
        # The objective is re-evaluated exactly on the plan; the solver's bound is for
        # coefficients rounded to 1e-6 of the dearest option, so it is lowered by the most
        # that rounding can add to stay a true bound.
        best_bound=built.micros(solver.best_objective_bound - built.rounding_units),
        solve_seconds=solver.wall_time,
        model_size=built.size(),
    )


class _AssignmentModel:
    """The CP-SAT model of a PreparedProblem (see the module docstring for its equations)."""

    def __init__(self, prep: PreparedProblem, cp_model: Any) -> None:
        self.prep = prep
        self.cp = cp_model
        self.model = cp_model.CpModel()
        dearest = max(c.dearest_micros for c in prep.classes)
        self.unit = max(1, dearest // CREDIT_UNITS_PER_DEAREST_OPTION)  # micro-dollars
        self.x_vars: list[Any] = []
        self.x_index: list[tuple[int, int]] = []  # (class, option) per x variable
        self.y_vars: dict[int, Any] = {}  # pool index -> credit charged, in units
        self._upper: list[int] = []
        self._coefficients: list[int] = []
        self._offset = 0
        # Most the rounded objective can exceed the exact one: half a unit per placed job on
        # its option's cost, one unit per job on its penalty.
        self.rounding_units = 0.0
        self._add_jobs()
        self._add_credit()
        self._set_objective()

    def units(self, micros: float) -> float:
        """Micro-dollars in objective units."""
        return micros * OBJECTIVE_UNITS_PER_CREDIT_UNIT / self.unit

    def micros(self, units: float) -> float:
        return units * self.unit / OBJECTIVE_UNITS_PER_CREDIT_UNIT

    def size(self) -> dict[str, int]:
        return {
            "jobs": len(self.prep.jobs),
            "classes": len(self.prep.classes),
            "variables": len(self.x_vars) + len(self.y_vars),
            "constraints": len(self.model.proto.constraints),
        }

    def _add_jobs(self) -> None:
        prep, model = self.prep, self.model
        quota_terms: list[list[tuple[int, int]]] = [[] for _ in prep.quota_limits]
        budget_terms: dict[str, list[tuple[int, int]]] = {p: [] for p in prep.budgets}
        for k, job_class in enumerate(prep.classes):
            if not job_class.options:
                continue
            penalty = math.ceil(self.units(prep.penalty_micros(job_class)))
            self._offset += penalty * job_class.size
            self.rounding_units += 1.5 * job_class.size
            project = job_class.template.project
            first = len(self.x_vars)
            for o, option in enumerate(job_class.options):
                i = len(self.x_vars)
                if job_class.size == 1:
                    self.x_vars.append(model.new_bool_var(f"x{k}_{o}"))
                else:
                    self.x_vars.append(model.new_int_var(0, job_class.size, f"x{k}_{o}"))
                self.x_index.append((k, o))
                self._upper.append(job_class.size)
                placed = option.cost + option.objective_extra_micros
                # Placing one job saves its penalty: folding that in keeps one term per var.
                self._coefficients.append(round(self.units(placed)) - penalty)
                for q, need in option.quota_needs:
                    quota_terms[q].append((i, need))
                if project in budget_terms:
                    budget_terms[project].append((i, option.cost + option.migration_micros))
            members = self.x_vars[first:]
            if job_class.size == 1:
                model.add_at_most_one(members)
            else:
                model.add(sum(members) <= job_class.size)
        for terms, limit in zip(quota_terms, prep.quota_limits, strict=True):
            self._add_cap(terms, limit)
        for project in sorted(budget_terms):
            self._add_cap(budget_terms[project], prep.budgets[project])

    def _add_cap(self, terms: list[tuple[int, int]], limit: int) -> None:
        # A cap that cannot bind even with every variable at its upper bound is left out.
        if terms and sum(c * self._upper[i] for i, c in terms) > limit:
            self.model.add(self._weighted(terms) <= limit)

    def _weighted(self, terms: list[tuple[int, int]]) -> Any:
        return self.cp.LinearExpr.weighted_sum(
            [self.x_vars[i] for i, _ in terms], [c for _, c in terms]
        )

    def _add_credit(self) -> None:
        prep, model, unit = self.prep, self.model, self.unit
        for cloud in sorted({pool.cloud for pool in prep.problem.pools}):
            pools = prep.pools_of_cloud(cloud)
            for p in pools:
                self.y_vars[p] = model.new_int_var(0, prep.pool_balances[p] // unit, f"y{p}")
            spend = [
                (i, prep.classes[k].options[o])
                for i, (k, o) in enumerate(self.x_index)
                if prep.classes[k].options[o].option.offer.cloud == cloud
            ]
            for subset in pool_sets(pools):
                covered = [(i, option.cost) for i, option in spend if set(option.pools) & subset]
                model.add(
                    unit * sum(self.y_vars[p] for p in sorted(subset)) <= self._weighted(covered)
                )
            if not prep.settings.allow_cash and spend:
                everything = [(i, option.cost) for i, option in spend]
                # Credit is counted in whole units, so allow one unit per pool of slack there,
                # and bound the spend by the exact balances (the plan then charges pools up to
                # their balance, not just the units counted here).
                model.add(
                    unit * sum(self.y_vars[p] for p in pools)
                    >= self._weighted(everything) - unit * len(pools)
                )
                model.add(self._weighted(everything) <= sum(prep.pool_balances[p] for p in pools))

    def _set_objective(self) -> None:
        if self._offset > OBJECTIVE_SAFE_LIMIT:
            raise ValueError(
                f"assignment objective would reach {self._offset:.3g} units, beyond CP-SAT's"
                " 64-bit range: the jobs' priorities span too far for"
                f" AssignmentSettings.priority_doubling={self.prep.settings.priority_doubling:g};"
                " raise it (e.g. to 20)"
            )
        pool_ids = sorted(self.y_vars)
        weights = self.prep.pool_weights
        self.model.minimize(
            self.cp.LinearExpr.weighted_sum(self.x_vars, self._coefficients)
            + self.cp.LinearExpr.weighted_sum(
                [self.y_vars[p] for p in pool_ids],
                [round((weights[p] - 1.0) * OBJECTIVE_UNITS_PER_CREDIT_UNIT) for p in pool_ids],
            )
            + self._offset
        )

    def hint(self, picks: Picks, charges: Charges) -> None:
        position = {key: i for i, key in enumerate(self.x_index)}
        hinted = [0] * len(self.x_vars)
        for key in picks.values():
            hinted[position[key]] += 1
        for var, value in zip(self.x_vars, hinted, strict=True):
            self.model.add_hint(var, value)
        charged = [0] * len(self.prep.pool_balances)
        for paid in charges.values():
            for p, amount in paid:
                charged[p] += amount
        for p, var in self.y_vars.items():
            self.model.add_hint(var, charged[p] // self.unit)


def _picks(prep: PreparedProblem, index: list[tuple[int, int]], values: list[int]) -> Picks:
    """Hand out each class's counts to its jobs: lowest job id gets the cheapest option."""
    counts: dict[int, list[tuple[int, int]]] = {}
    for (k, o), value in zip(index, values, strict=True):
        if value > 0:
            counts.setdefault(k, []).append((o, value))
    picks: Picks = {}
    for k, entries in counts.items():
        job_ids = iter(prep.classes[k].job_ids)
        for o, value in sorted(entries):
            for _ in range(value):
                picks[next(job_ids)] = (k, o)
    return picks
