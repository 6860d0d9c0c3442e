"""The omniscient optimum: the cheapest schedule meeting the deadline when the whole trace is known.

Tick model (shared with bench.spot's simulator, which replays policies under it):

* Time is cut into ticks of `tick_hours` (the trace's probe interval); row `a` of a
  zone's trace says whether spot capacity exists, and at which price, for the whole
  tick `a`. Decisions are taken at tick boundaries.
* The job needs `job_ticks` productive ticks and must have them all by the end of
  tick `deadline_ticks - 1` (i.e. at time `deadline_ticks` after submission).
* Every launch (from idle, or replacing another instance) costs `changeover_ticks`
  ticks without progress; the new instance is billed for them. Progress accrues one
  unit per billed tick after that. Stopping is free and instant.
* A spot instance in zone z runs during tick a only if z is available in row a; when
  it is not, the instance is gone at the start of that tick (preempted; nothing is
  billed for that tick). Spot ticks cost the zone's spot price of that row; on-demand
  ticks cost the region's on-demand price; an idle tick costs nothing.
* The checkpoint lives in the region of the last launch. A launch in another region
  once some progress exists costs `migration_cost` dollars (egress of the checkpoint).
* Once the last productive tick ends, billing stops.

The DP runs forward over ticks for many start rows at once (numpy over starts ×
progress). Its states at the start of a tick: idle with the checkpoint in region r,
productive on spot in zone z, productive on demand in region r, each with the cheapest
cost so far per progress value. A launch decided at tick t is parked in a ring
buffer and becomes productive at t + changeover_ticks; a launch that would be
preempted during its changeover is never worth making, so only launches with
`changeover_ticks` available rows ahead are offered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

INFEASIBLE = float("inf")


@dataclass(frozen=True, slots=True)
class TickMarket:
    """Per-zone availability and spot price rows, the zones' regions and on-demand prices."""

    available: BoolArray  # (zones, rows)
    spot_price: FloatArray  # (zones, rows), $/hour
    zone_region: tuple[int, ...]  # region index of each zone
    on_demand_price: tuple[float, ...]  # $/hour per region index
    tick_hours: float

    @property
    def rows(self) -> int:
        return int(self.available.shape[1])


def available_run_lengths(available: BoolArray) -> IntArray:
    """For each row, how many consecutive available rows start there (0 if unavailable)."""
    n = len(available)
    out = np.zeros(n + 1, dtype=np.int64)
    flags = available.astype(np.int64)
    # A reverse scan is the clearest exact form; it runs once per zone and trace.
    for i in range(n - 1, -1, -1):
        out[i] = (out[i + 1] + 1) * flags[i]
    return out[:n]


def optimal_costs(
    market: TickMarket,
    starts: Sequence[int] | IntArray,
    job_ticks: int,
    deadline_ticks: Sequence[int],
    changeover_ticks: int,
    migration_cost: float = 0.0,
    run_lengths: IntArray | None = None,
) -> FloatArray:
    """Minimum cost (dollars) for each start row and each deadline; inf when infeasible.

    Returns an array of shape (len(starts), len(deadline_ticks)).
    """
    if job_ticks < 1:
        raise ValueError("job_ticks must be >= 1")
    if changeover_ticks < 1:
        raise ValueError("changeover_ticks must be >= 1 (a launch always takes time)")
    start_rows = np.asarray(starts, dtype=np.int64)
    deadlines = np.asarray(deadline_ticks, dtype=np.int64)
    horizon = int(deadlines.max())
    if len(start_rows) == 0:
        return np.zeros((0, len(deadlines)))
    if int(start_rows.max()) + horizon > market.rows:
        raise ValueError("a start row plus the deadline runs past the end of the trace")
    zones = market.available.shape[0]
    regions = len(market.on_demand_price)
    k = changeover_ticks
    width = job_ticks
    dt = market.tick_hours
    n_starts = len(start_rows)

    runs = (
        run_lengths
        if run_lengths is not None
        else np.stack([available_run_lengths(market.available[z]) for z in range(zones)])
    )
    price_sum = np.concatenate(
        [np.zeros((zones, 1)), np.cumsum(market.spot_price * dt, axis=1)], axis=1
    )

    inf = np.inf
    dtype = np.float64
    idle = [np.full((n_starts, width), inf, dtype=dtype) for _ in range(regions)]
    for r in range(regions):
        idle[r][:, 0] = 0.0
    spot = [np.full((n_starts, width), inf, dtype=dtype) for _ in range(zones)]
    ondemand = [np.full((n_starts, width), inf, dtype=dtype) for _ in range(regions)]
    # Launches parked until their changeover is over: (first progress index, values).
    launch_ring: list[list[tuple[int, FloatArray] | None]] = [[None] * k for _ in range(regions)]
    spot_launch_ring: list[list[FloatArray | None]] = [[None] * k for _ in range(zones)]
    egress = np.where(np.arange(width) > 0, migration_cost, 0.0)[None, :]
    od_launch = [market.on_demand_price[r] * dt * k for r in range(regions)]
    od_tick = [market.on_demand_price[r] * dt for r in range(regions)]
    finished_by = np.full((horizon + 1, n_starts), inf)

    for t in range(horizon):
        rows = start_rows + t
        slot = t % k
        # Only progress values that are reachable by now and can still finish matter.
        lo = max(0, width - (horizon - t))
        hi = min(width - 1, t)
        window = slice(lo, hi + 1)
        # Launches made k ticks ago become productive now.
        for r in range(regions):
            parked = launch_ring[r][slot]
            if parked is not None:
                plo, values = parked
                part = slice(plo, plo + values.shape[1])
                np.minimum(ondemand[r][:, part], values + od_launch[r], out=ondemand[r][:, part])
        for z in range(zones):
            parked_cost = spot_launch_ring[z][slot]
            parked = launch_ring[market.zone_region[z]][slot]
            if parked is not None and parked_cost is not None:
                plo, values = parked
                part = slice(plo, plo + values.shape[1])
                np.minimum(spot[z][:, part], values + parked_cost[:, None], out=spot[z][:, part])
        # Free stops and preemption: idle[r] becomes the cheapest state in region r.
        for z in range(zones):
            r = market.zone_region[z]
            np.minimum(idle[r][:, window], spot[z][:, window], out=idle[r][:, window])
            gone = ~market.available[z, rows]
            if gone.any():
                spot[z][gone, lo : hi + 1] = inf
        for r in range(regions):
            np.minimum(idle[r][:, window], ondemand[r][:, window], out=idle[r][:, window])
        # Launch sources per target region (moving the checkpoint costs egress).
        for r in range(regions):
            best = idle[r][:, window].copy()
            for other in range(regions):
                if other != r:
                    np.minimum(best, idle[other][:, window] + egress[:, window], out=best)
            launch_ring[r][slot] = (lo, best)
        for z in range(zones):
            ok = runs[z, rows] >= k
            # A run of k available rows ends inside the trace; others are masked anyway.
            cost = price_sum[z, np.minimum(rows + k, market.rows)] - price_sum[z, rows]
            spot_launch_ring[z][slot] = np.where(ok, cost, inf)
        # One productive tick: progress p -> p + 1; reaching the job length finishes it.
        done_now = finished_by[t].copy()
        top = min(hi + 1, width - 1)
        for z in range(zones):
            tick_cost = (market.spot_price[z, rows] * dt)[:, None]
            ran = spot[z][:, window] + tick_cost
            if hi == width - 1:
                np.minimum(done_now, ran[:, -1], out=done_now)
            spot[z][:, lo + 1 : top + 1] = ran[:, : top - lo]
            spot[z][:, lo] = inf
        for r in range(regions):
            ran = ondemand[r][:, window] + od_tick[r]
            if hi == width - 1:
                np.minimum(done_now, ran[:, -1], out=done_now)
            ondemand[r][:, lo + 1 : top + 1] = ran[:, : top - lo]
            ondemand[r][:, lo] = inf
        finished_by[t + 1] = done_now

    return finished_by[deadlines].T.copy()
