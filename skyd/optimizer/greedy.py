"""Greedy cheapest-first assignment: the baseline the CP-SAT plan is measured against.

Jobs go one at a time (running jobs first, then by priority, then by id), each to its cheapest
option that still fits every quota and budget, paid by the soonest-expiring pool with enough
balance, else cash. It is also the CP-SAT search's first hint and its fallback.
"""

from __future__ import annotations

from skyd.optimizer.plan import AssignmentPlan, AssignmentProblem
from skyd.optimizer.prepared import CASH, Picks, PreparedProblem


def greedy_assignment(problem: AssignmentProblem) -> AssignmentPlan:
    prep = PreparedProblem(problem)
    return prep.build_plan(greedy_picks(prep), "GREEDY")


def greedy_picks(prep: PreparedProblem) -> Picks:
    usage = prep.usage_of({})
    picks: Picks = {}
    pools = prep.problem.pools
    queue = sorted(
        (
            (not job_class.running, -job_class.template.priority, job_id, k)
            for k, job_class in enumerate(prep.classes)
            for job_id in job_class.job_ids
        )
    )
    for _, _, job_id, k in queue:
        job_class = prep.classes[k]
        project = job_class.template.project
        order = sorted(
            range(len(job_class.options)),
            key=lambda o: (
                job_class.options[o].cost + job_class.options[o].migration_micros,
                job_class.options[o].option.key,
            ),
        )
        for o in order:
            option = job_class.options[o]
            if not usage.fits(prep, project, option):
                continue
            payer = next(
                (
                    p
                    for p in sorted(
                        (p for p in option.payers if p != CASH),
                        key=lambda p: (_expiry_key(pools[p].expires_in_hours), pools[p].pool_id),
                    )
                    if usage.pool_has_room(prep, p, option.cost)
                ),
                CASH if CASH in option.payers else None,
            )
            if payer is None:
                continue
            usage.take(project, option, payer)
            picks[job_id] = (k, o, payer)
            break
    return picks


def _expiry_key(hours: float | None) -> float:
    return float("inf") if hours is None else hours
