"""In-process event bus: persisted events fan out to subscribers (API streams, the scheduler)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from skyd.store.records import EventRecord


class EventBus:
    """Publish-after-commit fan-out. Slow subscribers lose the oldest events, never block others;
    they can catch up from the store by sequence number."""

    def __init__(self, queue_size: int = 10_000) -> None:
        self._subscribers: set[asyncio.Queue[EventRecord]] = set()
        self._queue_size = queue_size
        self.changed = asyncio.Event()  # set on every publish; the scheduler waits on it

    def publish(self, event: EventRecord) -> None:
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)
        self.changed.set()

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[EventRecord]]:
        queue: asyncio.Queue[EventRecord] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
