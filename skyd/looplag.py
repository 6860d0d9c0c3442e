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


class SlidingMax:
    """The largest value recorded in the last `window` seconds, or in any shorter recent span.

    Exact, not bucketed: the deque keeps every sample that is the largest of all samples after
    it, so the first one inside a span is that span's maximum."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._samples: deque[tuple[float, float]] = deque()  # (when, value), oldest first

    def add(self, at: float, value: float) -> None:
        while self._samples and self._samples[-1][1] <= value:
            self._samples.pop()
        self._samples.append((at, value))
        self.expire(at)

    def expire(self, now: float) -> None:
        while self._samples and self._samples[0][0] < now - self.window:
            self._samples.popleft()

    def since(self, now: float, seconds: float | None) -> float:
        self.expire(now)
        start = now - (self.window if seconds is None else min(seconds, self.window))
        for at, value in self._samples:
            if at >= start:
                return value
        return 0.0


class LoopLagMonitor:
    """Wakes every `interval` seconds; each wake-up's lateness is a sample. `max_lag()` is the
    largest sample of the last `window` seconds, `max_lag(seconds)` of a shorter recent span;
    `observers` see every sample (a histogram).

    On a shared machine lateness also counts the time the kernel gave other processes. So
    each sample also says how much of it the daemon itself spent on the CPU: the process's CPU
    time (every thread) between going to sleep and waking, less the interval, at most the
    lateness (`max_cpu_lag`): an upper bound of how late the daemon's own work made the loop
    (it may count a worker thread running beside the loop on another core). The loop thread's
    own CPU time, counted the same way (`max_cpu_lag(thread=True)`), is a lower bound (it
    misses waits for the GIL behind the daemon's worker threads)."""

    def __init__(
        self,
        interval: float = 0.02,
        window: float = 60.0,
        *,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        cpu: Callable[[], float] = time.process_time,
        thread_cpu: Callable[[], float] = time.thread_time,
    ) -> None:
        self.interval = interval
        self.window = window
        self._now = now
        self._sleep = sleep
        self._cpu = cpu
        self._thread_cpu = thread_cpu
        self._lags = SlidingMax(window)
        self._cpu_lags = SlidingMax(window)
        self._thread_lags = SlidingMax(window)
        self.observers: list[Observer] = []
        self.count = 0

    def record(
        self, at: float, lag: float, cpu_lag: float = 0.0, thread_cpu_lag: float = 0.0
    ) -> None:
        lag = max(0.0, lag)
        self.count += 1
        self._lags.add(at, lag)
        self._cpu_lags.add(at, min(lag, max(0.0, cpu_lag)))
        self._thread_lags.add(at, min(lag, max(0.0, thread_cpu_lag)))
        for observe in self.observers:
            observe(lag)

    def max_lag(self, seconds: float | None = None) -> float:
        """The worst lateness seen in the last `seconds` (at most `window`; 0 if none)."""
        return self._lags.since(self._now(), seconds)

    def max_cpu_lag(self, seconds: float | None = None, *, thread: bool = False) -> float:
        """At most (at least, with `thread`) how much of the worst lateness of the last
        `seconds` the daemon's own work caused."""
        return (self._thread_lags if thread else self._cpu_lags).since(self._now(), seconds)

    async def run(self) -> None:
        while True:
            expected = self._now() + self.interval
            busy_from, thread_from = self._cpu(), self._thread_cpu()
            await self._sleep(self.interval)
            woke = self._now()
            self.record(
                woke,
                woke - expected,
                self._cpu() - busy_from - self.interval,
                self._thread_cpu() - thread_from - self.interval,
            )
