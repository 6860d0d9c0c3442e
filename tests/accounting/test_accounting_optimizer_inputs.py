"""Accounting hands the optimizer the pools that can pay now and each project's budget left."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyd.accounting.optimizer_inputs import optimizer_budgets, optimizer_pools
from skyd.clock import VirtualClock
from tests.accounting.accounting_books import ADMIN, START, accountant, add_job, launch, new_store

DAY = 86_400.0


def test_pools_that_can_pay_now_and_budgets_left(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock)
    books.admin.add_pool(
        ADMIN, {"name": "soon", "cloud": "aws", "amount": 2, "expires": START + DAY}
    )
    books.admin.add_pool(
        ADMIN,
        {
            "name": "west",
            "cloud": "aws",
            "region": "us-west-2",
            "amount": 50,
            "expires": START + 10 * DAY,
        },
    )
    books.admin.add_pool(
        ADMIN,
        {
            "name": "later",
            "cloud": "gcp",
            "amount": 9,
            "starts": START + DAY,
            "expires": START + 9 * DAY,
        },
    )
    books.admin.add_pool(
        ADMIN, {"name": "gone", "cloud": "azure", "amount": 9, "expires": START + DAY}
    )
    books.admin.retire_pool(ADMIN, "gone")
    books.admin.set_project(ADMIN, "nlp", {"monthly_budget": 5})
    books.admin.set_project(ADMIN, "free", {"monthly_budget": None})
    launch(store, "i-1", job_id=add_job(store, project="nlp"), hourly_micros=1_000_000, at=START)
    books.accrue(START + 1.5 * 3600)
    clock.set(START + 1.5 * 3600)
    pools = {p.pool_id: p for p in optimizer_pools(books)}
    assert set(pools) == {"soon", "west"}  # not yet started, retired: not offered
    assert pools["soon"].balance_micros == 500_000
    assert pools["soon"].expires_in_hours == pytest.approx(22.5)
    assert pools["west"].region == "us-west-2"
    budgets = {b.project: b.remaining_micros for b in optimizer_budgets(books)}
    assert budgets == {"nlp": 3_500_000}
