"""Budget and limit rules (pure): does a job fit its user's limits and its project's budget?"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from skyd.accounting.records import BudgetAction, UserLimit
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


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """One monthly budget that binds a job: its project's, its owner's, or the lab's."""

    scope: str  # stable key: "project:nlp", "user:1000", "lab"
    label: str  # for people: "project nlp", "your", "the lab's"
    budget_micros: int
    spent_micros: int

    @property
    def left_micros(self) -> int:
        return max(0, self.budget_micros - self.spent_micros)


def judge(
    *,
    gpus: int,
    hourly_micros: int | None,
    hours: float,
    usage: Usage,
    limit: UserLimit | None,
    budgets: Sequence[BudgetLine],
) -> Verdict:
    """The first limit or budget a new job would break, checked in a stable order.

    `hours` is the job's estimated runtime, or the stated default when it gives none: an
    unknown runtime is never counted as free.
    """
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
    if hourly_micros == 0:
        return Verdict()  # a free job (the lab's own machines) is never held by money
    for line in budgets:
        if line.spent_micros >= line.budget_micros:
            return Verdict(
                f"{line.label} monthly budget of {_dollars(line.budget_micros)} is spent "
                f"({_dollars(line.spent_micros)} so far)"
            )
        if hourly_micros is not None:
            expected = round(hourly_micros * hours)
            if line.spent_micros + expected > line.budget_micros:
                return Verdict(
                    f"the job is expected to cost {_dollars(expected)}; {line.label} monthly "
                    f"budget has {_dollars(line.left_micros)} left"
                )
    return Verdict()


def alert_lines_crossed(line: BudgetLine, lines_permille: Sequence[int]) -> list[int]:
    """The warning lines (per mille of the budget; 1000 = all spent) `line` has reached."""
    if line.budget_micros <= 0:
        return [1000] if line.spent_micros > 0 else []
    return [
        mark for mark in lines_permille if line.spent_micros * 1000 >= mark * line.budget_micros
    ]


def budget_action(
    line: BudgetLine, *, warn_permille: int, at_budget: BudgetAction, ahead_micros: int = 0
) -> BudgetAction | None:
    """What running jobs under `line` get at its level of spending (None = nothing): the
    budget policy once it is spent, or would be after `ahead_micros` more; a warning from
    `warn_permille` of it on."""
    if line.spent_micros + ahead_micros >= line.budget_micros:
        return at_budget
    if line.spent_micros * 1000 >= warn_permille * line.budget_micros:
        return BudgetAction.WARN
    return None
