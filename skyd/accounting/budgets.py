"""Budget and limit rules (pure): does a job fit its user's limits and its project's budget?"""

from __future__ import annotations

import json
from dataclasses import dataclass

from skyd.accounting.records import BudgetAction, Project, UserLimit
from skyd.model import micros_to_dollars
from skyd.spec import TaskSpec


@dataclass(frozen=True, slots=True)
class Usage:
    """What one user's jobs hold right now."""

    gpus: int = 0
    hourly_micros: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why a job does not fit now (`problem`), and whether it never can (`never` → refuse)."""

    problem: str | None = None
    never: bool = False


def requested_gpus(spec: TaskSpec) -> int:
    """The fewest GPUs the job can run with: its smallest alternative, times its nodes."""
    fewest = [
        min(count for _, count in alt.accelerators) if alt.accelerators else 0
        for alt in spec.alternatives
    ]
    return min(fewest, default=0) * spec.num_nodes


def held_gpus(placement_json: str | None, spec_json: str) -> int:
    """GPUs a placed job holds (accelerators per node × nodes); 0 until it is placed."""
    if not placement_json:
        return 0
    placement = json.loads(placement_json)
    per_node = int(placement.get("accelerator_count") or 0)
    if per_node == 0:
        return 0
    nodes = int(json.loads(spec_json).get("num_nodes") or 1)
    return per_node * nodes


def _dollars(micros: int) -> str:
    return f"${micros_to_dollars(micros):,.2f}"


def judge(
    *,
    gpus: int,
    hourly_micros: int | None,
    hours: float | None,
    usage: Usage,
    limit: UserLimit | None,
    project: Project | None,
    project_spent_micros: int,
) -> Verdict:
    """The first limit or budget a new job would break, checked in a stable order."""
    if limit is not None and limit.max_gpus is not None and gpus > 0:
        if gpus > limit.max_gpus:
            return Verdict(
                f"the job needs {gpus} GPUs; your limit is {limit.max_gpus} at once", never=True
            )
        if usage.gpus + gpus > limit.max_gpus:
            return Verdict(
                f"your jobs hold {usage.gpus} GPUs; {gpus} more would pass your limit of "
                f"{limit.max_gpus}"
            )
    if limit is not None and limit.max_hourly_micros is not None and hourly_micros:
        if hourly_micros > limit.max_hourly_micros:
            return Verdict(
                f"the job costs about {_dollars(hourly_micros)}/h; your limit is "
                f"{_dollars(limit.max_hourly_micros)}/h",
                never=True,
            )
        if usage.hourly_micros + hourly_micros > limit.max_hourly_micros:
            return Verdict(
                f"your jobs spend {_dollars(usage.hourly_micros)}/h; "
                f"{_dollars(hourly_micros)}/h more would pass your limit of "
                f"{_dollars(limit.max_hourly_micros)}/h"
            )
    budget = project.monthly_budget_micros if project is not None else None
    if project is not None and budget is not None and hourly_micros != 0:
        if project_spent_micros >= budget:
            return Verdict(
                f"project {project.name} has spent {_dollars(project_spent_micros)} of its "
                f"{_dollars(budget)} monthly budget"
            )
        if hourly_micros is not None and hours is not None:
            expected = round(hourly_micros * hours)
            if project_spent_micros + expected > budget:
                return Verdict(
                    f"the job is expected to cost {_dollars(expected)}; project {project.name} "
                    f"has {_dollars(budget - project_spent_micros)} of its monthly budget left"
                )
    return Verdict()


def project_action(
    spent_micros: int, budget_micros: int, *, warn_fraction: float, at_budget: BudgetAction
) -> BudgetAction | None:
    """What running jobs of a project get at this level of spending (None = nothing)."""
    if spent_micros >= budget_micros:
        return at_budget
    if spent_micros >= warn_fraction * budget_micros:
        return BudgetAction.WARN
    return None
