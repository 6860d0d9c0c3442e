"""A waiting job with no placement yet is priced by where it would go now, never as free:
otherwise a budget check between submit and the first plan lets a held job start (#18)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from skyd.scheduler import budgets
from skyd.store.records import JobRecord


def job(job_id: int) -> JobRecord:
    return cast(JobRecord, SimpleNamespace(id=job_id))


def test_an_unplaced_waiting_job_is_priced_by_its_estimate() -> None:
    placed, planned, unplaced, nowhere = job(1), job(2), job(3), job(4)
    placements: dict[int, dict[str, Any]] = {1: {"hourly_price": 3.06}, 2: {"hourly_price": 1.5}}
    estimates = {3: 6_120_000, 4: None}
    prices = budgets.waiting_prices(
        [placed, planned, unplaced, nowhere],
        lambda j: placements.get(j.id),
        lambda j: estimates[j.id],
    )
    assert prices == {1: 3_060_000, 2: 1_500_000, 3: 6_120_000, 4: None}
