"""What a running daemon did during a benchmark's window, read from its /metrics: the exact
worst event-loop lag (polled often enough that no sample escapes) and how many placements,
launches, planner passes, global solves and accrual passes happened.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

SHORT, LONG = "2", "10"  # skyd.metrics.LAG_WINDOWS_SECONDS: the spans the daemon exports
POLL_SECONDS = 1.0  # well inside the 2 s span, so consecutive polls overlap
# counters whose growth over the window says the scheduler, planner and accrual were at work
ACTIVITY = {
    "first_placements": ("skyd_placement_latency_seconds_count", ()),
    "sim_launches": ("skyd_provider_calls_total", (("call", "launch"), ("provider", "sim"))),
    "local_launches": ("skyd_provider_calls_total", (("call", "launch"), ("provider", "local"))),
    "planner_passes": ("skyd_planner_passes_total", ()),
    "planner_global_solves": ("skyd_planner_global_solves_total", ()),
    "accrual_passes": ("skyd_accrual_passes_total", ()),
    "lag_samples": ("skyd_loop_lag_seconds_count", ()),
}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(socket: str) -> Samples:
    async with (
        aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=socket)) as session,
        session.get("http://skyd/metrics") as resp,
    ):
        text = await resp.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@dataclass
class Window:
    """Filled in when the `watch` block ends."""

    lag_max_ms: float = 0.0
    own_lag_max_ms: float = 0.0  # at most the part of it the daemon's own work caused
    own_lag_min_ms: float = 0.0  # at least that part (the loop thread's own CPU time)
    polls: int = 0
    longest_poll_gap_s: float = 0.0
    covered: bool = False  # every moment of the window fell inside some poll's span
    activity: dict[str, float] = field(default_factory=dict)
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)  # at the end of the window

    def as_dict(self) -> dict[str, Any]:
        return {
            "loop_lag_ms_max": self.lag_max_ms,
            "loop_lag_own_work_ms_max": self.own_lag_max_ms,
            "loop_lag_loop_thread_ms_max": self.own_lag_min_ms,
            "lag_polls": self.polls,
            "longest_poll_gap_s": self.longest_poll_gap_s,
            "lag_fully_covered": self.covered,
            **self.activity,
            "load_average": self.load_average,
        }


# per series (wall; the daemon's CPU, an upper bound of its own doing; the loop thread's CPU, a
# lower bound), its exact worst over the last 2 s and the last 10 s
SERIES = {
    "wall": ("skyd_loop_lag_window_max_seconds", ()),
    "process": ("skyd_loop_lag_cpu_window_max_seconds", (("cpu", "process"),)),
    "loop_thread": ("skyd_loop_lag_cpu_window_max_seconds", (("cpu", "loop_thread"),)),
}
Lags = dict[str, tuple[float, float]]


def _lags(samples: Samples) -> Lags:
    """The daemon's exact worst loop lag over the last 2 s and 10 s, per series."""

    def read(name: str, labels: tuple[tuple[str, str], ...], window: str) -> float:
        return samples[(name, tuple(sorted((*labels, ("window", window)))))]

    return {
        series: (read(name, labels, SHORT), read(name, labels, LONG))
        for series, (name, labels) in SERIES.items()
    }


@contextmanager
def watch(socket: str) -> Iterator[Window]:
    """Poll the daemon's recent loop-lag maxima in a thread of its own while the block runs
    (the load's own loop may be too busy to poll on time), and count its activity.

    A poll answers for the 2 s before the daemon read it; where two polls are further apart
    than that (a starved poller), the later poll's 10 s maximum is taken instead, which may
    reach back before the window (an overstatement, never a miss)."""
    window = Window()
    before = asyncio.run(scrape(socket))
    stop = threading.Event()
    polled: list[tuple[float, float, Lags]] = []  # (sent, answered, lags)

    def poll() -> None:
        while not stop.wait(POLL_SECONDS):
            sent = time.monotonic()
            lags = _lags(asyncio.run(scrape(socket)))
            polled.append((sent, time.monotonic(), lags))

    began = time.monotonic()
    poller = threading.Thread(target=poll, name="lag-poller", daemon=True)
    poller.start()
    try:
        yield window
    finally:
        stop.set()
        poller.join()
    after = asyncio.run(scrape(socket))
    polled.append((time.monotonic(), time.monotonic(), _lags(after)))
    worst = dict.fromkeys(SERIES, 0.0)
    longest = 0.0
    previous_sent = began
    for sent, answered, lags in polled:
        gap = answered - previous_sent  # the most this poll's read can be after the last one
        longest = max(longest, gap)
        for series, (short, long) in lags.items():
            worst[series] = max(worst[series], short if gap < float(SHORT) else long)
        previous_sent = sent
    window.lag_max_ms = 1000 * worst["wall"]
    window.own_lag_max_ms = 1000 * worst["process"]
    window.own_lag_min_ms = 1000 * worst["loop_thread"]
    window.polls = len(polled)
    window.longest_poll_gap_s = longest
    window.covered = longest < float(LONG)
    window.load_average = os.getloadavg()
    window.activity = {
        name: after.get(key, 0.0) - before.get(key, 0.0) for name, key in ACTIVITY.items()
    }
