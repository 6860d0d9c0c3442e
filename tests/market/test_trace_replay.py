"""TraceReplay on a VirtualClock: values change exactly at the trace's tick boundaries."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from skyd.clock import VirtualClock
from skyd.errors import TraceError
from skyd.market import MarketChange, TraceReplay, TraceSet, ZoneTrace


def make_set() -> TraceSet:
    # Irregular ticks (195 s, then 200 s, ...) as in the real probes.
    stamps = np.array([0.0, 195.0, 395.0, 590.0, 785.0]) + 1_676_498_896.0
    zones = {
        "za": ZoneTrace(
            "za",
            "ra",
            np.array([True, True, False, False, True]),
            np.array([1.0, 1.0, 1.0, 1.2, 1.2]),
            3.0,
        ),
        "zb": ZoneTrace(
            "zb",
            "rb",
            np.array([False, True, True, True, True]),
            np.array([0.9, 0.9, 0.9, 0.9, 0.9]),
            3.0,
        ),
    }
    return TraceSet("t", "aws", "p3.2xlarge", "V100:1", stamps, zones)


async def test_availability_flips_exactly_at_ticks() -> None:
    clock = VirtualClock(1000.0)
    replay = TraceReplay(make_set(), clock)
    assert replay.available("za") and not replay.available("zb")
    await clock.advance(194.999)
    assert not replay.available("zb")
    await clock.advance(0.001)
    assert replay.available("zb")
    assert replay.available("za")
    await clock.advance(199.999)  # row 2 starts at 395 s
    assert replay.available("za")
    await clock.advance(0.001)
    assert not replay.available("za")
    assert replay.spot_price("za") == 1.0
    await clock.advance(195.0)
    assert replay.spot_price("za") == 1.2


async def test_next_change_and_speedup() -> None:
    clock = VirtualClock(0.0)
    replay = TraceReplay(make_set(), clock, start_offset=195.0, speedup=10.0)
    assert replay.current_row() == 1
    # za changes at row 2 (trace 395 s): 200 trace seconds later = 20 clock seconds.
    assert replay.next_change_at("za") == pytest.approx(20.0)
    await clock.advance(20.0)
    assert not replay.available("za")
    await clock.advance(39.0)  # last row starts at trace 785 s = clock 59 s
    assert replay.available("za")
    assert replay.next_change_at("za") is None
    assert replay.next_change_at("zb") is None


async def test_changes_yield_events_at_tick_times() -> None:
    clock = VirtualClock(0.0)
    replay = TraceReplay(make_set(), clock)
    seen: list[tuple[float, MarketChange]] = []

    async def listen() -> None:
        async for change in replay.changes():
            seen.append((clock.now(), change))

    task = asyncio.create_task(listen())
    await asyncio.sleep(0)
    await clock.advance(1000.0)
    await asyncio.wait_for(task, timeout=5)
    assert [(round(t, 6), c) for t, c in seen] == [
        (195.0, MarketChange("zb", True, 0.9)),
        (395.0, MarketChange("za", False, 1.0)),
        (590.0, MarketChange("za", False, 1.2)),
        (785.0, MarketChange("za", True, 1.2)),
    ]


def test_bad_arguments() -> None:
    clock = VirtualClock(0.0)
    with pytest.raises(TraceError, match="speedup must be > 0"):
        TraceReplay(make_set(), clock, speedup=0)
    with pytest.raises(TraceError, match="start_offset"):
        TraceReplay(make_set(), clock, start_offset=10_000.0)
    with pytest.raises(TraceError, match="no zone 'zz'"):
        TraceReplay(make_set(), clock).available("zz")


def test_shipped_set_replays() -> None:
    from skyd.market import load_trace_set, shipped_trace_dir

    replay = TraceReplay(load_trace_set(shipped_trace_dir()), VirtualClock(0.0))
    assert set(replay.zones) == {"us-east-1c", "us-east-2b", "us-west-2a"}
    assert replay.next_change_at("us-west-2a") is not None
