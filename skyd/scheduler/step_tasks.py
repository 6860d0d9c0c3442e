"""Per-job locks and the step tasks in flight: at most one step of a job runs at a time."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any


class StepTasks:
    """Holds only what a restart may lose: the store says what each job still needs."""

    def __init__(self) -> None:
        # a job's lock lives while someone holds or waits for it: kept for every job ever
        # stepped, 100,000 waiting jobs left as many objects for each GC pass to walk
        self.locks: dict[int, asyncio.Lock] = {}
        self.lock_users: dict[int, int] = {}
        self.inflight: dict[int, asyncio.Task[None]] = {}

    def spawn(self, job_id: int, step: Callable[[int], Coroutine[Any, Any, None]]) -> None:
        """Run `step(job_id)` as a task, unless the job has one in flight or is locked."""
        lock = self.locks.get(job_id)
        if job_id in self.inflight or (lock is not None and lock.locked()):
            return
        task = asyncio.create_task(step(job_id), name=f"job-{job_id}")
        self.inflight[job_id] = task
        task.add_done_callback(functools.partial(self._forget, job_id))

    def _forget(self, job_id: int, _task: asyncio.Task[None]) -> None:
        self.inflight.pop(job_id, None)

    @contextlib.asynccontextmanager
    async def locked(self, job_id: int) -> AsyncIterator[None]:
        """Hold the job's lock; the last one out drops it."""
        lock = self.locks.setdefault(job_id, asyncio.Lock())
        self.lock_users[job_id] = self.lock_users.get(job_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            users = self.lock_users.pop(job_id) - 1
            if users:
                self.lock_users[job_id] = users
            else:
                del self.locks[job_id]
