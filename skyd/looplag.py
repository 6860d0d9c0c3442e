"""Event-loop lag: a small periodic task compares when it asked to wake with when it woke.

Any callback that holds the loop (a slow query, a big JSON dump, CPU work) delays every other
task by as much; this task sees that delay as lateness. Readers: /metrics (skyd/metrics.py) and
the benchmarks, which can run a `LoopLagMonitor` beside their load and read `max_lag()`.

A sample can only see a stall that covers one of its wake-ups, and sees it from the missed
wake-up on: the worst lag reported is within `interval` of the longest stall, so the interval
is small (`loop_lag_interval_seconds`, 20 ms by default; one wake-up costs tens of µs).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

Observer = Callable[[float], None]


class LoopLagMonitor:
    """Wakes every `interval` seconds; each wake-up's lateness is a sample. `max_lag()` is the
    largest sample of the last `window` seconds, `max_lag(seconds)` of a shorter recent span;
    `observers` see every sample (a histogram)."""

    def __init__(
        self,
        interval: float = 0.02,
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

    def max_lag(self, seconds: float | None = None) -> float:
        """The worst lateness seen in the last `seconds` (at most `window`; 0 if none).

        Exact, not bucketed: the deque holds every sample that is the largest of all samples
        after it, so the first one inside the span is the span's maximum."""
        now = self._now()
        self._expire(now)
        since = now - (self.window if seconds is None else min(seconds, self.window))
        for at, lag in self._samples:
            if at >= since:
                return lag
        return 0.0

    async def run(self) -> None:
        while True:
            expected = self._now() + self.interval
            await self._sleep(self.interval)
            woke = self._now()
            self.record(woke, woke - expected)
