"""The assignment's LP relaxation (GLOP): a proven lower bound, and a plan rounded from it.

Same variables and constraints as the CP-SAT model (skyd.optimizer.assignment), continuous,
in exact micro-dollars:

    x[k,o] in [0, |k|], y[p] in [0, balance(p)]
    sum_o x[k,o] <= |k|;  quotas;  budgets;  per cloud and pool set S:
    sum_{p in S} y[p] <= sum_{o usable by S} cost(o) x[k,o]   (and, without cash, spend <=
    balances and credit >= spend)
    minimize sum (cost + extra - penalty) x - sum (1 - value(p)) y + sum penalty |k|

Any integral plan, with any way of charging its credit, costs at least the LP optimum, so the
LP objective bounds every plan: a rounded plan's gap to it is proven. A basic optimal
solution has at most as many fractional classes as there are coupling rows (quotas,
budgets, credit sets: ~100 here), so rounding touches a few percent of 1,000+ distinct jobs.

Rounding: every class keeps the whole jobs the LP placed on each option; the jobs left
(fractional parts, highest priority weight first) go to their options in order of LP value,
then cost, where quotas, budgets and (without cash) credit still allow; credit is charged as
skyd.optimizer.prepared does.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from skyd.optimizer.plan import AssignmentPlan
from skyd.optimizer.plan_building import build_plan
from skyd.optimizer.prepared import Charges, Picks, PreparedProblem, pool_sets
from skyd.optimizer.repair import Mover

INTEGRAL = 1e-6  # an LP value this close to an integer is that integer
# Jobs the repair tries to place by moving others, per rounding (each try scans the holders
# of the quotas it lacks; measured: a few hundred at 10,000 jobs)
MAX_MOVE_ATTEMPTS = 1000
# The LP is stated in dollars: in micro-dollars its coefficients span 1e0..1e11 and GLOP's
# numerics give up (ABNORMAL) on some instances.
DOLLARS = 1e-6


@dataclass(frozen=True, slots=True)
class Relaxation:
    bound: float  # LP optimum, effective micro-dollars incl. penalties: a proven lower bound
    values: list[list[float]]  # per class, per option: x[k,o]
    # per class, per option: reduced cost at the prices found (decomposed solves only); the
    # rounding then places every job, by penalty, on its cheapest priced option that fits
    reduced: list[list[float]] | None
    seconds: float
    variables: int
    constraints: int


@dataclass(slots=True)
class _Columns:
    """The LP in columns: per variable its cost, upper bound and (row, coefficient) entries;
    rows with their bounds. Class rows (sum_o x[k,o] <= |k|) are kept apart: the Lagrangian
    bound solves them per class."""

    cost: list[float]
    upper: list[float]
    entries: list[list[tuple[int, float]]]
    row_low: list[float]
    row_high: list[float]
    index: list[list[int]]  # per class, per option: column
    pools: list[int]  # the credit columns (pool variables y)
    offset: float
    # which row is which (the same in every _columns of one problem, whatever the classes)
    quota_rows: list[int] = field(default_factory=list)
    budget_rows: dict[str, int] = field(default_factory=dict)
    credit_rows: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # (row, mask)
    cash_rows: dict[str, tuple[int, int]] = field(default_factory=dict)  # (cap, covers)


def _columns(
    prep: PreparedProblem, classes: frozenset[int] | None = None, scale: float = 1.0
) -> _Columns:
    """The LP's columns; with `classes`, only theirs, every capacity scaled by `scale`."""
    cols = _Columns([], [], [], [], [], [], [], 0.0)

    def row(low: float, high: float) -> int:
        cols.row_low.append(low)
        cols.row_high.append(high)
        return len(cols.row_low) - 1

    quota_rows = cols.quota_rows = [row(-math.inf, limit * scale) for limit in prep.quota_limits]
    budget_rows = cols.budget_rows = {
        p: row(-math.inf, b * DOLLARS * scale) for p, b in sorted(prep.budgets.items())
    }
    by_cloud: dict[str, list[tuple[int, Any]]] = {}
    for k, job_class in enumerate(prep.classes):
        ids: list[int] = []
        cols.index.append(ids)
        if not job_class.options or (classes is not None and k not in classes):
            continue
        penalty = prep.penalty_micros(job_class) * DOLLARS
        cols.offset += penalty * job_class.size
        budget = budget_rows.get(job_class.template.project)
        for option in job_class.options:
            ids.append(len(cols.cost))
            cols.cost.append((option.cost + option.objective_extra_micros) * DOLLARS - penalty)
            cols.upper.append(job_class.size)
            entries = [(quota_rows[q], float(need)) for q, need in option.quota_needs]
            if budget is not None:
                entries.append((budget, (option.cost + option.migration_micros) * DOLLARS))
            cols.entries.append(entries)
            by_cloud.setdefault(option.option.offer.cloud, []).append((ids[-1], option))
    for cloud in sorted({pool.cloud for pool in prep.problem.pools}):
        pools = prep.pools_of_cloud(cloud)
        y = {}
        for p in pools:
            y[p] = len(cols.cost)
            cols.pools.append(y[p])
            cols.cost.append(prep.pool_weights[p] - 1.0)
            cols.upper.append(prep.pool_balances[p] * DOLLARS * scale)
            cols.entries.append([])
        spend = by_cloud.get(cloud, [])
        # pool sets as bit masks: tens of thousands of options meet each set
        masks = [(i, -o.cost * DOLLARS, sum(1 << p for p in o.pools)) for i, o in spend]
        for subset in pool_sets(pools):
            r = row(-math.inf, 0.0)  # sum y[S] - covered spend <= 0
            for p in subset:
                cols.entries[y[p]].append((r, 1.0))
            wanted = sum(1 << p for p in subset)
            cols.credit_rows.setdefault(cloud, []).append((r, wanted))
            for i, coefficient, mask in masks:
                if mask & wanted:
                    cols.entries[i].append((r, coefficient))
        if not prep.settings.allow_cash:
            cap = row(-math.inf, sum(prep.pool_balances[p] for p in pools) * DOLLARS * scale)
            covers = row(0.0, 0.0)  # credit charged = spend
            cols.cash_rows[cloud] = (cap, covers)
            for p in pools:
                cols.entries[y[p]].append((covers, 1.0))
            for i, option in spend:
                cols.entries[i].append((cap, option.cost * DOLLARS))
                cols.entries[i].append((covers, -option.cost * DOLLARS))
    return cols


def solve_relaxation(
    prep: PreparedProblem, time_limit_seconds: float, sample: int | None = None
) -> Relaxation | None:
    """A proven lower bound on every plan and an LP-guided solution to round; None when GLOP
    does not finish in time.

    Up to `sample` classes (or always, with None): the LP itself, whose optimum is the bound.
    Beyond: price-directed decomposition. The LP of an even sample of the classes, with
    every capacity scaled to the sample's share of the jobs, prices the quotas, budgets and
    credit; with those prices each class on its own takes its option of least reduced cost
    (or stays out), and Lagrangian duality makes the priced total a bound for any prices
    (a good one when the sample is representative). That per-class choice is what is
    rounded."""
    start = time.perf_counter()
    placeable = [k for k, c in enumerate(prep.classes) if c.options]
    if sample is None or len(placeable) <= sample:
        full = _columns(prep)
        solved = _solve_lp(prep, full, time_limit_seconds)
        if solved is None:
            return None
        objective, values, _ = solved
        return Relaxation(
            bound=objective / DOLLARS,
            values=[[values[i] for i in ids] for ids in full.index],
            reduced=None,
            seconds=time.perf_counter() - start,
            variables=len(full.cost),
            constraints=len(full.row_low) + len(placeable),
        )
    step = len(placeable) / sample
    chosen = frozenset(placeable[int(i * step)] for i in range(sample))
    share = sum(prep.classes[k].size for k in chosen) / sum(prep.classes[k].size for k in placeable)
    part = _columns(prep, chosen, share)
    solved = _solve_lp(prep, part, time_limit_seconds)
    if solved is None:
        return None
    _, _, duals = solved
    bound, priced_x, reduced = _lagrangian(prep, part, duals, share)
    return Relaxation(
        bound=bound / DOLLARS,
        values=priced_x,
        reduced=reduced,
        seconds=time.perf_counter() - start,
        variables=len(part.cost),
        constraints=len(part.row_low) + len(chosen),
    )


def _solve_lp(
    prep: PreparedProblem, cols: _Columns, time_limit_seconds: float
) -> tuple[float, list[float], list[float]] | None:
    """GLOP on the columns: (optimum, value per column, dual per (non-class) row)."""
    from ortools.linear_solver import linear_solver_pb2, pywraplp

    model = linear_solver_pb2.MPModelProto()
    model.maximize = False
    model.objective_offset = cols.offset
    rows: list[tuple[list[int], list[float]]] = [([], []) for _ in cols.row_low]
    position: dict[int, int] = {}
    active = [i for ids in cols.index for i in ids] + cols.pools
    for i in active:
        position[i] = len(model.variable)
        model.variable.add(
            lower_bound=0.0, upper_bound=cols.upper[i], objective_coefficient=cols.cost[i]
        )
        for r, coefficient in cols.entries[i]:
            rows[r][0].append(position[i])
            rows[r][1].append(coefficient)
    for (ids, coefficients), low, high in zip(rows, cols.row_low, cols.row_high, strict=True):
        row = model.constraint.add(lower_bound=low, upper_bound=high)
        row.var_index.extend(ids)
        row.coefficient.extend(coefficients)
    for k, ids in enumerate(cols.index):
        if ids:
            row = model.constraint.add(lower_bound=-math.inf, upper_bound=prep.classes[k].size)
            row.var_index.extend(position[i] for i in ids)
            row.coefficient.extend([1.0] * len(ids))
    solver = pywraplp.Solver.CreateSolver("GLOP")
    if solver is None:
        return None
    solver.SetTimeLimit(max(1, int(time_limit_seconds * 1000)))
    error = solver.LoadModelFromProto(model)
    if error:
        raise ValueError(f"assignment LP could not be loaded: {error}")
    if solver.Solve() != pywraplp.Solver.OPTIMAL:
        return None
    response = linear_solver_pb2.MPSolutionResponse()
    solver.FillSolutionResponseProto(response)
    values = list(response.variable_value)
    per_column = [0.0] * len(cols.cost)
    for i, at in position.items():
        per_column[i] = values[at]
    return response.objective_value, per_column, list(response.dual_value)[: len(cols.row_low)]


def _lagrangian(
    prep: PreparedProblem, part: _Columns, duals: list[float], share: float
) -> tuple[float, list[list[float]], list[list[float]]]:
    """With the sample's duals as multipliers (mu = -dual: >= 0 on `<=` rows, free on
    equalities), min over every class's x of the objective plus mu (row activity - row
    bound) at full capacities: a lower bound on the LP, so on every plan. Returns it, the x
    that attains it (each class wholly on its least reduced-cost option, or out) and each
    option's reduced cost. Rows are those of `part` (the same for any classes); its row
    bounds were scaled by `share`."""
    mu = [
        max(0.0, -d) if low == -math.inf else -d for d, low in zip(duals, part.row_low, strict=True)
    ]
    bound = -sum(m * high / share for m, high in zip(mu, part.row_high, strict=True) if m)
    quota_mu = [mu[r] for r in part.quota_rows]
    budget_mu = {p: mu[r] for p, r in part.budget_rows.items() if mu[r]}
    credit = {
        cloud: [(mu[r], mask) for r, mask in rows if mu[r]]
        for cloud, rows in part.credit_rows.items()
    }
    cash = {cloud: mu[cap] - mu[covers] for cloud, (cap, covers) in part.cash_rows.items()}
    values: list[list[float]] = []
    reduced: list[list[float]] = []
    for job_class in prep.classes:
        priced = []
        if job_class.options:
            penalty = prep.penalty_micros(job_class) * DOLLARS
            bound += penalty * job_class.size
            per_budget = budget_mu.get(job_class.template.project, 0.0)
            for option in job_class.options:
                dollars = option.cost * DOLLARS
                value = (option.cost + option.objective_extra_micros) * DOLLARS - penalty
                for q, need in option.quota_needs:
                    value += quota_mu[q] * need
                if per_budget:
                    value += per_budget * (option.cost + option.migration_micros) * DOLLARS
                cloud = option.option.offer.cloud
                mask = sum(1 << p for p in option.pools)
                for m, wanted in credit.get(cloud, ()):
                    if mask & wanted:
                        value -= m * dollars
                value += cash.get(cloud, 0.0) * dollars
                priced.append(value)
        reduced.append(priced)
        chosen = [0.0] * len(priced)
        if priced:
            best = min(range(len(priced)), key=priced.__getitem__)
            if priced[best] < 0:
                chosen[best] = float(job_class.size)
                bound += job_class.size * priced[best]
        values.append(chosen)
    for cloud, rows in part.credit_rows.items():
        covers = part.cash_rows.get(cloud, (0, -1))[1]
        for p in prep.pools_of_cloud(cloud):
            value = prep.pool_weights[p] - 1.0
            value += sum(mu[r] for r, mask in rows if mask >> p & 1)
            if covers >= 0:
                value += mu[covers]
            bound += prep.pool_balances[p] * DOLLARS * min(0.0, value)
    return bound, values, reduced


def round_relaxation(
    prep: PreparedProblem, relaxation: Relaxation, keep_from: float = 1.0
) -> tuple[Picks, Charges]:
    """A feasible plan from the LP solution (see the module docstring); the repair of what
    rounding left out tries at most MAX_MOVE_ATTEMPTS jobs (work, not time, bounds it: the
    plan does not depend on how busy the machine is)."""
    usage = prep.empty_usage()
    picks: Picks = {}
    allow_cash = prep.settings.allow_cash
    left: list[tuple[float, int, int, list[int]]] = []  # (-penalty, first job, class, jobs)
    priced = relaxation.reduced
    for k, job_class in enumerate(prep.classes):
        values = relaxation.values[k] if priced is None else [0.0] * len(job_class.options)
        jobs = iter(job_class.job_ids)
        project = job_class.template.project
        skipped = []
        for o, value in enumerate(values):
            option = job_class.options[o] if job_class.options else None
            for _ in range(math.floor(value + 1.0 - keep_from + INTEGRAL)):
                job_id = next(jobs, None)
                if job_id is None:
                    break  # rounding up the class's shares ran out of jobs
                # an approximate (first-order) LP solution may overfill a quota slightly
                if option is None or not usage.fits(prep, project, option):
                    skipped.append(job_id)
                    continue
                picks[job_id] = (k, o)
                usage.take(project, option)
        rest = skipped + list(jobs)
        if rest and job_class.options:
            left.append((-prep.penalty_micros(job_class), rest[0], k, rest))
    # whole jobs are charged first, so the credit check below sees what they use
    charges = prep.charge_credit(picks, prep.pool_balances)
    for paid in charges.values():
        for pool, amount in paid:
            usage.pool_charged[pool] += amount
    # largest penalty first: big jobs claim the room fractional parts left, small ones fill in
    mover = Mover(prep, picks, usage)
    attempts = [0]  # jobs the mover tried to place
    for _, _, k, rest in sorted(left):
        job_class = prep.classes[k]
        values = relaxation.values[k]
        if priced is not None:
            order = sorted(range(len(job_class.options)), key=lambda o: (priced[k][o], o))
        else:
            order = sorted(
                range(len(job_class.options)),
                key=lambda o: (-(values[o] % 1.0), job_class.options[o].cost, o),
            )
        project = job_class.template.project
        for job_id in rest:
            for o in order:
                option = job_class.options[o]
                if not usage.fits(prep, project, option):
                    continue
                if not allow_cash and usage.credit_left(prep, option) < option.cost:
                    continue
                usage.take(project, option)
                picks[job_id] = (k, o)
                mover.taken(job_id, option)
                charges[job_id] = usage.charge(option, prep.pool_balances)
                break
            else:
                # no room as things stand: make some before smaller jobs take what is left
                # (moving others frees quota, not budget)
                budget = prep.budgets.get(project)
                cheapest = min(o.cost + o.migration_micros for o in job_class.options)
                if (
                    budget is None or usage.project_spent[project] + cheapest <= budget
                ) and attempts[0] < MAX_MOVE_ATTEMPTS:
                    attempts[0] += 1
                    mover.place(job_id, k)
    # second chance for what is still out: moves made since may have opened room
    for _, _, k, rest in sorted(left):
        for job_id in rest:
            if job_id not in picks and attempts[0] < MAX_MOVE_ATTEMPTS:
                attempts[0] += 1
                mover.place(job_id, k)
    return picks, prep.charge_credit(picks, prep.pool_balances)


# Rounding thresholds tried, best plan kept: a class's share of at least this many jobs on an
# option is placed there before the repair. Which one wins varies by instance (measured on
# the benchmark: each of 1.0, 0.75 and 0.5 is best on some seed).
ROUNDINGS = (1.0, 0.75, 0.5, 0.25)


def solve_by_relaxation(
    prep: PreparedProblem, deadline: float, limits: SolverLimitsLike
) -> AssignmentPlan | None:
    """The plan of least objective among the roundings tried before `deadline`, with the
    relaxation's bound; None when the LP does not finish in time."""
    relaxation = solve_relaxation(
        prep, max(0.05, deadline - time.perf_counter()), limits.lp_sample_classes
    )
    if relaxation is None:
        return None
    best: tuple[float, Picks, Charges] | None = None
    tries: list[tuple[Relaxation, float]] = [(relaxation, keep) for keep in ROUNDINGS]
    if relaxation.reduced is not None:
        # priced order, then plain cost order (budgets the prices misjudge bind less)
        tries = [(relaxation, 1.0), (replace(relaxation, reduced=None), 1.0)]
    # every rounding is always tried (a few tens of ms each at 1,000 jobs, about a second at
    # 10,000): the plan then does not depend on how busy the machine was
    for guide, keep_from in tries:
        picks, charges = round_relaxation(prep, guide, keep_from)
        objective = prep.objective_micros(picks, charges)
        if best is None or objective < best[0]:
            best = (objective, picks, charges)
    assert best is not None
    objective, picks, charges = best
    proven = objective <= relaxation.bound
    return build_plan(
        prep,
        picks,
        charges,
        "OPTIMAL" if proven else "FEASIBLE",
        objective=objective,
        best_bound=min(relaxation.bound, objective),
        solve_seconds=relaxation.seconds,
        model_size={
            "jobs": len(prep.jobs),
            "classes": len(prep.classes),
            "variables": relaxation.variables,
            "constraints": relaxation.constraints,
            "lp_sampled": int(relaxation.reduced is not None),
        },
    )


class SolverLimitsLike(Protocol):
    @property
    def lp_sample_classes(self) -> int: ...
