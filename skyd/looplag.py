"""Event-loop lag: a small periodic task compares when it asked to wake with when it woke.

Any callback that holds the loop (a slow query, a big JSON dump, CPU work) delays every other
task by as much; this task sees that delay as lateness. Readers: /metrics (skyd/metrics.py) and
the benchmarks, which can run a `LoopLagMonitor` beside their load and read `max_lag()`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

Observer = Callable[[float], None]


class LoopLagMonitor:
    """Wakes every `interval` seconds; each wake-up's lateness is a sample. `max_lag()` is the
    largest sample of the last `window` seconds; `observers` see every sample (a histogram)."""

    def __init__(
        self,
        interval: float = 0.1,
        window: float = 60.0,
        *,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval = interval
        self.window = window
        self._now = now
        self._sleep = sleep
        self._samples: deque[tuple[float, float]] = deque()  # (when, lag), oldest first
        self.observers: list[Observer] = []
        self.count = 0

    def record(self, at: float, lag: float) -> None:
        lag = max(0.0, lag)
        self.count += 1
        # keep only samples that could still be the window's maximum: a monotonic deque
        while self._samples and self._samples[-1][1] <= lag:
            self._samples.pop()
        self._samples.append((at, lag))
        self._expire(at)
        for observe in self.observers:
            observe(lag)

    def _expire(self, now: float) -> None:
        while self._samples and self._samples[0][0] < now - self.window:
            self._samples.popleft()

    def max_lag(self) -> float:
        """The worst lateness seen in the last `window` seconds (0 before any sample)."""
        self._expire(self._now())
        return self._samples[0][1] if self._samples else 0.0

    async def run(self) -> None:
        while True:
            expected = self._now() + self.interval
            await self._sleep(self.interval)
            woke = self._now()
            self.record(woke, woke - expected)
