"""Fetches single jobs whose rows an event touched, coalescing bursts: however many events a
job gets while a fetch is pending, it is fetched once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tui.client import ApiError, DaemonApi, DaemonUnavailableError

JsonObject = dict[str, Any]

PARALLEL_FETCHES = 8


class JobRefresher:
    def __init__(self, api: DaemonApi, deliver: Callable[[JsonObject], None]) -> None:
        self.api = api
        self.deliver = deliver
        self._wanted: dict[int, None] = {}  # insertion-ordered set: oldest request first
        self._wake = asyncio.Event()

    def request(self, job_id: int) -> None:
        self._wanted[job_id] = None
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._wanted)

    async def run(self) -> None:
        """Runs until cancelled; a job the daemon cannot serve now is simply left as it is
        (the next event or reconnect brings it up to date)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._wanted:
                batch = list(self._wanted)[:PARALLEL_FETCHES]
                for job_id in batch:
                    del self._wanted[job_id]
                results = await asyncio.gather(
                    *(self.api.job(job_id) for job_id in batch), return_exceptions=True
                )
                for result in results:
                    if isinstance(result, dict):
                        self.deliver(result)
                    elif not isinstance(result, ApiError | DaemonUnavailableError):
                        raise result
