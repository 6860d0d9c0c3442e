"""Budgets as the scheduler sees them: which waiting jobs are held, what over-budget means. Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from skyd.model import JobState
from skyd.scheduler.interfaces import HoldAnswer
from skyd.store.records import JobRecord

BUDGET_CHECK_SECONDS = 30.0


def waiting_prices(
    batch: Sequence[JobRecord],
    placement_of: Callable[[JobRecord], Mapping[str, Any] | None],
    estimate: Callable[[JobRecord], int | None],
) -> dict[int, int | None]:
    """Waiting jobs → their $/h in micro-dollars: the placement's (`placement_of` answers
    from the planner's memory first: a first plan is not stored), else what `estimate` says
    it would cost now — never "unknown, so free" (None only where nothing could run it)."""
    waiting: dict[int, int | None] = {}
    for job in batch:
        placement = placement_of(job) or {}
        price = placement.get("hourly_price")
        waiting[job.id] = estimate(job) if price is None else int(float(price) * 1_000_000)
    return waiting


def holds(decisions: Mapping[int, HoldAnswer]) -> dict[int, str]:
    """The held jobs among `decisions`, each with why."""
    return {job_id: d.message for job_id, d in decisions.items() if d.hold}


def over_budget(action: str) -> tuple[JobState, str]:
    """Where a running job goes when a budget it counts against (its project's, its owner's or
    the lab's) is spent ("stop" or "hold"), and why."""
    if action == "stop":
        return JobState.FAILED, "stopped: a budget it counts against is spent (skyctl budget)"
    return (
        JobState.RECOVERING,
        "held until the budget allows: a budget it counts against is spent (skyctl budget)",
    )


WARNING = "a budget it counts against passed its warning line (skyctl budget)"
