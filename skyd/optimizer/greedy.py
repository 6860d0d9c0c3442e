"""Greedy cheapest-first assignment: the baseline the CP-SAT plan is measured against.

Jobs go one at a time (running jobs first, then by priority, then by id), each to its cheapest
option that still fits every quota and budget; its cost is charged to the pools of that cloud,
soonest-expiring first, and the rest paid in cash (when cash is not allowed, an option is only
taken if credit covers it). It is also the CP-SAT search's first hint and its fallback.
"""

from __future__ import annotations

from skyd.optimizer.plan import AssignmentPlan, AssignmentProblem
from skyd.optimizer.plan_building import build_plan
from skyd.optimizer.prepared import Charges, Picks, PreparedProblem


def greedy_assignment(problem: AssignmentProblem) -> AssignmentPlan:
    prep = PreparedProblem(problem)
    picks, charges = greedy_picks(prep)
    return build_plan(prep, picks, charges, "GREEDY")


def greedy_picks(prep: PreparedProblem) -> tuple[Picks, Charges]:
    usage = prep.empty_usage()
    picks: Picks = {}
    charges: Charges = {}
    allow_cash = prep.settings.allow_cash
    queue = sorted(
        (not job_class.running, -job_class.template.priority, job_id, k)
        for k, job_class in enumerate(prep.classes)
        for job_id in job_class.job_ids
    )
    orders: dict[int, list[int]] = {}
    for _, _, job_id, k in queue:
        job_class = prep.classes[k]
        project = job_class.template.project
        options = job_class.options
        order = orders.get(k)
        if order is None:
            # Options are already in (cost, hours) order; migration costs may reorder them.
            order = orders[k] = sorted(
                range(len(options)), key=lambda o: options[o].cost + options[o].migration_micros
            )
        for o in order:
            option = options[o]
            if not usage.fits(prep, project, option):
                continue
            if not allow_cash and usage.credit_left(prep, option) < option.cost:
                continue
            usage.take(project, option)
            picks[job_id] = (k, o)
            charges[job_id] = usage.charge(option, prep.pool_balances)
            break
    return picks, charges
