"""The waiting queue as the scheduler reads it: per pass, and in pages at start."""

from __future__ import annotations

import asyncio

from skyd.errors import SpecError
from skyd.model import JobState
from skyd.scheduler.placement import DataSource
from skyd.spec import TaskSpec
from skyd.store import Store
from skyd.store import jobs as job_store
from skyd.store.records import JobRecord

WAITING = (JobState.RECOVERING, JobState.PENDING)
PLACEMENT_BATCH = 64  # waiting jobs at the head of the queue considered per pass
# and as many again further back, from a cursor that moves on every pass: a head that waits
# for capacity one provider lacks (a busy `local`) must not keep jobs behind it that another
# provider could start now from ever being looked at (backfill)
BACKFILL_BATCH = 64


class WaitingQueue:
    """Which waiting jobs a pass looks at; remembers where the backfill window stopped."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # (priority, id) of the last job the backfill window looked at; None = start over
        self._backfill_after: tuple[int, int] | None = None

    def batch(self) -> list[JobRecord]:
        """The queue's head, then a window further back that moves on at every pass."""
        head = job_store.jobs_in_states(self.store, WAITING, limit=PLACEMENT_BATCH)
        if len(head) < PLACEMENT_BATCH:
            self._backfill_after = None
            return head
        last = head[-1]
        after = self._backfill_after
        if after is None or (after[0], -after[1]) > (last.priority, -last.id):
            after = (last.priority, last.id)  # the window starts behind the head
        window = job_store.jobs_in_states_after(
            self.store, WAITING, after=after, limit=BACKFILL_BATCH
        )
        # at the queue's end, start again right behind the head on the next pass
        self._backfill_after = (
            (window[-1].priority, window[-1].id) if len(window) == BACKFILL_BATCH else None
        )
        return head + window


async def learn_waiting_data(store: Store, data: DataSource) -> None:
    """Look up the buckets of every waiting job, in keyset pages that yield the loop between
    them: a queue of 100,000 jobs is read without holding up requests or a shutdown."""
    after = 0
    while True:
        await asyncio.sleep(0)
        page = job_store.waiting_jobs_page(store, after_id=after, limit=256)
        if not page:
            return
        after = page[-1].id
        for job in page:
            text = job.spec_json
            if not any(
                f'"{name}":' in text and f'"{name}":{{}}' not in text
                for name in ("storage_mounts", "inputs", "outputs")
            ):
                continue  # parsed only for jobs that name buckets
            try:
                spec = TaskSpec.from_json(text)
            except SpecError:
                continue
            await data.prefetch(spec)
