"""What a running daemon did during a benchmark's window, read from its /metrics: the exact
worst event-loop lag (polled often enough that no sample escapes) and how many placements,
launches, planner passes, global solves and accrual passes happened.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

LAG_WINDOW = "2"  # skyd.metrics.LAG_WINDOWS_SECONDS: the shortest span the daemon exports
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
    polls: int = 0
    longest_poll_gap_s: float = 0.0
    covered: bool = False  # every moment of the window fell inside some poll's 2 s span
    activity: dict[str, float] = field(default_factory=dict)
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)  # at the end of the window

    def as_dict(self) -> dict[str, Any]:
        return {
            "loop_lag_ms_max": self.lag_max_ms,
            "lag_polls": self.polls,
            "longest_poll_gap_s": self.longest_poll_gap_s,
            "lag_fully_covered": self.covered,
            **self.activity,
            "load_average": self.load_average,
        }


def _lag(samples: Samples) -> float:
    return samples[("skyd_loop_lag_window_max_seconds", (("window", LAG_WINDOW),))]


@contextmanager
def watch(socket: str) -> Iterator[Window]:
    """Poll the daemon's 2-second loop-lag maximum in a thread of its own while the block
    runs (the load's own loop may be too busy to poll on time), and count its activity."""
    window = Window()
    before = asyncio.run(scrape(socket))
    stop = threading.Event()
    polled: list[tuple[float, float]] = []  # (when, worst lag of the 2 s before)

    def poll() -> None:
        while not stop.wait(POLL_SECONDS):
            polled.append((time.monotonic(), _lag(asyncio.run(scrape(socket)))))

    began = time.monotonic()
    poller = threading.Thread(target=poll, name="lag-poller", daemon=True)
    poller.start()
    try:
        yield window
    finally:
        stop.set()
        poller.join()
    after = asyncio.run(scrape(socket))
    polled.append((time.monotonic(), _lag(after)))
    times = [began] + [when for when, _ in polled]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    window.lag_max_ms = 1000 * max(lag for _, lag in polled)
    window.polls = len(polled)
    window.longest_poll_gap_s = max(gaps)
    window.covered = window.longest_poll_gap_s < float(LAG_WINDOW)
    window.load_average = os.getloadavg()
    window.activity = {
        name: after.get(key, 0.0) - before.get(key, 0.0) for name, key in ACTIVITY.items()
    }
