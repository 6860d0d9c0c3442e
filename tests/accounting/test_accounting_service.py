"""The Accountant as a daemon service: periodic accrual on the injected clock, and a wake-up
for the scheduler when a budget action appears."""

from __future__ import annotations

import asyncio
from pathlib import Path

from skyd.accounting import AccountingSettings
from skyd.clock import VirtualClock
from skyd.store import ledger as ledger_store
from tests.accounting.accounting_books import ADMIN, START, accountant, add_job, new_store, run_job

DOLLAR = 1_000_000


async def test_run_accrues_every_interval_and_wakes_the_scheduler_on_budget_actions(
    tmp_path: Path,
) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock, settings=AccountingSettings(accrual_interval_seconds=60))
    books.admin.set_project(ADMIN, "nlp", {"monthly_budget": 1})
    job = add_job(store, project="nlp")
    run_job(store, job, gpus=0, hourly_micros=6 * DOLLAR)  # $0.10 a minute
    service = asyncio.create_task(books.run())
    try:
        await asyncio.sleep(0)  # let the service make its first pass and go to sleep
        books.bus.changed.clear()
        await clock.advance(5 * 60)  # five passes: $0.50
        assert books.job_cost_micros([job]) == {job: DOLLAR // 2}
        assert ledger_store.watermark_of(store.conn, "sim", f"i-job{job}") == START + 300
        assert not books.bus.changed.is_set()
        await clock.advance(3 * 60)  # $0.80: the warning line
        assert books.running_over_budget() == [(job, "warn")]
        assert books.bus.changed.is_set()
        books.bus.changed.clear()
        await clock.advance(60)  # $0.90, and the next pass would spend the rest: hold now
        assert books.running_over_budget() == [(job, "hold")]
        assert books.bus.changed.is_set()
        await clock.advance(60)  # $1.00: still held, and the spent budget is announced
        assert books.running_over_budget() == [(job, "hold")]
        reasons = [
            r[0] for r in store.conn.execute("SELECT reason FROM events WHERE kind = 'budget'")
        ]
        assert any("is spent" in reason for reason in reasons), reasons
    finally:
        service.cancel()
        await asyncio.gather(service, return_exceptions=True)
