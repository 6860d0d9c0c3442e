"""The event-loop lag monitor: lateness per wake-up, the worst of a sliding window."""

from __future__ import annotations

import pytest

from skyd.looplag import LoopLagMonitor


class Stop(Exception):
    pass


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.oversleep: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds + (self.oversleep.pop(0) if self.oversleep else 0.0)
        if not self.oversleep:
            raise Stop  # end the run after the scripted wake-ups


async def test_lateness_is_measured_against_the_expected_wake_up() -> None:
    time = FakeTime()
    time.oversleep = [0.0, 0.3, 0.05, 0.0]
    seen: list[float] = []
    monitor = LoopLagMonitor(interval=0.1, window=10.0, now=time.clock, sleep=time.sleep)
    monitor.observers.append(seen.append)
    with pytest.raises(Stop):
        await monitor.run()
    assert [round(s, 6) for s in seen] == [0.0, 0.3, 0.05]
    assert round(monitor.max_lag(), 6) == 0.3


def test_the_maximum_slides_out_of_the_window() -> None:
    time = FakeTime()
    monitor = LoopLagMonitor(window=10.0, now=time.clock)
    assert monitor.max_lag() == 0.0
    monitor.record(100.0, 0.5)
    monitor.record(105.0, 0.2)
    monitor.record(108.0, -0.001)  # woke early: no lag
    time.now = 109.0
    assert monitor.max_lag() == 0.5
    time.now = 111.0  # the 0.5 s sample is now older than the window
    assert monitor.max_lag() == 0.2
    time.now = 116.0
    assert monitor.max_lag() == 0.0
    assert monitor.count == 3


def test_a_recent_span_reports_its_own_exact_maximum() -> None:
    time = FakeTime()
    monitor = LoopLagMonitor(window=60.0, now=time.clock)
    monitor.record(100.0, 0.5)  # older than the 2 s span asked below
    monitor.record(109.0, 0.0371)  # not a bucket bound: reported as it was
    monitor.record(110.0, 0.01)
    time.now = 110.5
    assert monitor.max_lag(2.0) == 0.0371
    assert monitor.max_lag(0.2) == 0.0
    assert monitor.max_lag() == 0.5
    assert monitor.max_lag(600.0) == 0.5  # never more than the window kept


async def test_lateness_from_the_loops_own_work_is_told_apart_from_a_busy_machine() -> None:
    time = FakeTime()
    # two wake-ups 0.3 s late: in the first the daemon ran all 0.4 s (its own work made the
    # loop late), in the second 0.15 s (the kernel ran other processes)
    time.oversleep = [0.3, 0.3, 0.0]
    cpu_spent = iter([0.0, 0.4, 0.4, 0.55, 0.55])
    loop_thread_spent = iter([0.0, 0.3, 0.3, 0.35, 0.35])  # a worker ran the rest
    monitor = LoopLagMonitor(
        interval=0.1,
        window=10.0,
        now=time.clock,
        sleep=time.sleep,
        cpu=lambda: next(cpu_spent),
        thread_cpu=lambda: next(loop_thread_spent),
    )
    with pytest.raises(Stop):
        await monitor.run()
    assert monitor.count == 2
    assert round(monitor.max_lag(), 6) == 0.3
    assert round(monitor.max_cpu_lag(), 6) == 0.3  # the first
    assert round(monitor.max_cpu_lag(thread=True), 6) == 0.2  # of it, the loop thread's
    time.now += 5.0
    monitor.record(time.now, 0.0)
    # a span that holds only the second: as late, but only 0.05 s of it the loop's own work
    assert round(monitor.max_lag(5.2), 6) == 0.3
    assert round(monitor.max_cpu_lag(5.2), 6) == 0.05
