"""A market source that replays a TraceSet on the injected clock, optionally accelerated."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from skyd.clock import Clock
from skyd.errors import TraceError
from skyd.market.traces import TraceSet

# Virtual and scaled clocks do float arithmetic on tick times; a row must not be
# read as "not yet started" because of a rounding error far below a microsecond.
_TIME_TOLERANCE = 1e-6


class MarketChange(NamedTuple):
    """A zone's spot availability and/or price changed to these values."""

    zone: str
    available: bool
    spot_price: float


class TraceReplay:
    """Replays spot availability and prices, row by row, at the trace's own tick times.

    Trace time `timestamps[0] + start_offset` corresponds to the clock time `anchor` (by
    default: at construction); trace time runs `speedup` times faster than the clock.
    After the last row the last values hold forever.
    """

    def __init__(
        self,
        traces: TraceSet,
        clock: Clock,
        start_offset: float = 0.0,
        speedup: float = 1.0,
        *,
        anchor: float | None = None,
    ) -> None:
        if speedup <= 0:
            raise TraceError(f"speedup must be > 0, got {speedup!r}")
        span = float(traces.timestamps[-1] - traces.timestamps[0])
        if not 0 <= start_offset <= span:
            raise TraceError(
                f"start_offset must be within 0..{span:g} seconds, got {start_offset!r}"
            )
        self._traces = traces
        self._clock = clock
        self._anchor = clock.now() if anchor is None else anchor
        relative = traces.timestamps - traces.timestamps[0] - start_offset
        self._row_clock: npt.NDArray[np.float64] = self._anchor + relative / speedup
        # Rows at which a zone's availability or price differs from the row before.
        self._change_rows: dict[str, npt.NDArray[np.int64]] = {}
        for name, zone in traces.zones.items():
            changed = np.diff(zone.available.astype(np.int8)) != 0
            changed |= np.diff(zone.spot_price) != 0
            self._change_rows[name] = np.flatnonzero(changed).astype(np.int64) + 1

    @property
    def traces(self) -> TraceSet:
        return self._traces

    @property
    def zones(self) -> list[str]:
        return self._traces.zone_names

    def row_at(self, when: float) -> int:
        """The trace row in force at clock time `when` (the first row before the start)."""
        row = int(np.searchsorted(self._row_clock, when + _TIME_TOLERANCE, side="right")) - 1
        return max(row, 0)

    def current_row(self) -> int:
        return self.row_at(self._clock.now())

    def available(self, zone: str) -> bool:
        return bool(self._traces.zone(zone).available[self.current_row()])

    def spot_price(self, zone: str) -> float:
        return float(self._traces.zone(zone).spot_price[self.current_row()])

    def on_demand_price(self, zone: str) -> float:
        return self._traces.zone(zone).on_demand_price

    def region(self, zone: str) -> str:
        return self._traces.zone(zone).region

    def clock_time_of_row(self, row: int) -> float:
        return float(self._row_clock[row])

    @property
    def tick_clock_seconds(self) -> float:
        """The trace's nominal probe interval on the clock (the median gap, over speedup)."""
        if len(self._row_clock) < 2:
            return 0.0
        return float(np.median(np.diff(self._row_clock)))

    def availability_rows(self, zone: str, since: float) -> list[tuple[float, bool]]:
        """(clock time, available) of `zone` from the row in force at `since` to the one in
        force now, keeping only rows whose availability differs from the row before."""
        available = self._traces.zone(zone).available
        first, last = self.row_at(since), self.current_row()
        if first > last:
            return []
        window = available[first : last + 1]
        rows = np.concatenate(([0], np.flatnonzero(window[1:] != window[:-1]) + 1)) + first
        return [(self.clock_time_of_row(int(r)), bool(available[r])) for r in rows]

    def _next_change_row(self, zone: str, after_row: int) -> int | None:
        rows = self._change_rows[zone]
        index = int(np.searchsorted(rows, after_row, side="right"))
        return int(rows[index]) if index < len(rows) else None

    def next_change_at(self, zone: str) -> float | None:
        """Clock time of this zone's next availability or price change; None if none is left."""
        self._traces.zone(zone)
        row = self._next_change_row(zone, self.current_row())
        return None if row is None else self.clock_time_of_row(row)

    async def changes(self) -> AsyncIterator[MarketChange]:
        """Yield each zone's new state exactly when its row changes, sleeping on the clock."""
        row = self.current_row()
        while True:
            found = (self._next_change_row(z, row) for z in self._change_rows)
            upcoming = [r for r in found if r is not None]
            if not upcoming:
                return
            row = min(upcoming)
            delay = self.clock_time_of_row(row) - self._clock.now()
            if delay > 0:
                await self._clock.sleep(delay)
            for name, zone in self._traces.zones.items():
                if self._next_change_row(name, row - 1) == row:
                    yield MarketChange(name, bool(zone.available[row]), float(zone.spot_price[row]))


def lasting_anchor(path: Path, clock: Clock, replay: Mapping[str, object]) -> float:
    """The clock time at which this replay began, kept in `path`: a restarted daemon resumes
    the market where the clock says it is instead of rewinding to the start offset. A replay
    set up differently (`replay`: trace, offset, speedup) begins afresh, now."""
    try:
        held = json.loads(path.read_text())
        if held.get("replay") == dict(replay):
            return float(held["anchor"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # none yet, or unreadable: begin now
    anchor = clock.now()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"anchor": anchor, "replay": dict(replay)}))
    os.replace(tmp, path)
    return anchor
