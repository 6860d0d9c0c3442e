"""A Clock whose sleep returns at once, advancing virtual time and recording how long was asked."""

from __future__ import annotations

import asyncio


class InstantClock:
    """For code that only paces itself with sleep (retries, backoff): tests read `sleeps`.

    Unlike skyd.clock.VirtualClock nobody has to advance it, which suits a fetch
    whose progress also depends on real socket I/O.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._now += max(0.0, seconds)
        await asyncio.sleep(0)
