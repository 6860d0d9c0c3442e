"""The omniscient optimum: the cheapest schedule meeting the deadline when the whole trace is known.

Model (shared with bench.spot's simulator, which replays policies under it). Time is
exact, counted in units of a lattice step `g` seconds that divides every probe
interval, the changeover delay d and the job length C (15 s for the V100 set at the
usual d values; the simulator snaps probe times onto it, see bench/spot/FORMAT.md):

* Row `a` of a zone's trace holds from `times[a]` to `times[a + 1]` (irregular
  spacing is fine): availability and spot price are constant over it.
* Decisions (launch, stop, switch) are taken at row boundaries; the job also stops
  the moment its work is done, wherever that falls.
* Every launch is billed from the moment it is made and makes progress only after
  d; the job needs C of progress and must have it by the deadline R (any real
  number: no rounding).
* A spot instance in zone z is gone at the start of the first row where z is
  unavailable. Spot costs the row's price, on demand its region's price, per hour.
* The checkpoint lives in the region of the last launch; a launch in another region
  once some progress exists costs `migration_cost` dollars.

Why the DP is exact with integer state: call u = t - p the slack used (elapsed time
minus progress). While an instance runs, u does not move; while idle, p does not move;
a launch adds d to u (its changeover is counted as negative progress up front, which is
exact once the changeover is over and only makes an instance stopped earlier look
worse, and such a launch is never worth making). So running states are kept indexed by
u and idle states by p, both integers on the lattice, and a schedule finishes at time
C + u, which meets R exactly when u <= (R - C) / g.
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
class LatticeMarket:
    """Per-zone availability and spot price rows on an exact time lattice."""

    available: BoolArray  # (zones, rows)
    spot_price: FloatArray  # (zones, rows), $/hour
    times: IntArray  # (rows + 1,): start of each row, then the end of the last, in units
    zone_region: tuple[int, ...]  # region index of each zone
    on_demand_price: tuple[float, ...]  # $/hour per region index
    unit_seconds: int  # the lattice step g

    @property
    def rows(self) -> int:
        return int(self.available.shape[1])

    @property
    def unit_hours(self) -> float:
        return self.unit_seconds / 3600.0


def slack_units(job_units: int, deadline_seconds: float, unit_seconds: int) -> int:
    """The most slack (in units) a schedule may use: C + u must be <= R."""
    return int(np.floor((deadline_seconds / unit_seconds - job_units) + 1e-9))


def optimal_costs(
    market: LatticeMarket,
    starts: Sequence[int] | IntArray,
    job_units: int,
    changeover_units: int,
    deadline_seconds: Sequence[float],
    migration_cost: float = 0.0,
) -> FloatArray:
    """Minimum cost (dollars) for each start row and each deadline; inf when infeasible.

    Returns an array of shape (len(starts), len(deadline_seconds)).
    """
    if job_units < 1:
        raise ValueError("job_units must be >= 1")
    if changeover_units < 1:
        raise ValueError("changeover_units must be >= 1 (a launch always takes time)")
    start_rows = np.asarray(starts, dtype=np.int64)
    g = market.unit_seconds
    limits = [slack_units(job_units, r, g) for r in deadline_seconds]
    n = len(start_rows)
    if n == 0:
        return np.zeros((0, len(limits)))
    top = max(limits)
    if top < changeover_units:
        return np.full((n, len(limits)), INFEASIBLE)
    span = job_units + top  # the latest completion, in units after the start
    times = market.times
    origin = times[start_rows]
    # The rows each start needs: up to the one in force at its latest completion.
    last = np.searchsorted(times, origin + span, side="left")
    if int(last.max()) > market.rows:
        raise ValueError("a start row plus the deadline runs past the end of the trace")
    steps = int((last - start_rows).max())

    zones = market.available.shape[0]
    regions = len(market.on_demand_price)
    width = top + 1  # u in [0, top]
    c = job_units
    k = changeover_units
    unit_h = market.unit_hours
    inf = np.inf
    idle = [np.full((n, c), inf) for _ in range(regions)]  # by progress p in [0, C)
    for r in range(regions):
        idle[r][:, 0] = 0.0
    spot = [np.full((n, width), inf) for _ in range(zones)]
    ondemand = [np.full((n, width), inf) for _ in range(regions)]
    best = np.full((n, width), inf)
    od_unit = [p * unit_h for p in market.on_demand_price]
    in_region = [[z for z in range(zones) if market.zone_region[z] == r] for r in range(regions)]
    origin_list = [int(o) for o in origin]
    last_list = [int(x) for x in last]
    starts_list = [int(x) for x in start_rows]

    for j in range(steps):
        live = [s for s in range(n) if starts_list[s] + j < last_list[s]]
        alive = set(live)
        row = np.minimum(start_rows + j, market.rows - 1)
        t0 = [
            int(times[starts_list[s] + j]) - origin_list[s] if s in alive else 0 for s in range(n)
        ]
        avail = market.available[:, row]  # (zones, n)
        # Slack used so far is at most the time elapsed: only u <= max t matters yet.
        w = min(top, max(t0) + k) + 1
        # 1. Stops (free) and preemptions: a running state at u becomes idle at p = t - u.
        pools = []
        for r in range(regions):
            pool = ondemand[r][:, :w].copy()
            for z in in_region[r]:
                np.minimum(pool, spot[z][:, :w], out=pool)
            pools.append(pool)
        for z in range(zones):
            spot[z][~avail[z]] = inf
        # 2. Launches: u' = t - p + d from the idle state of any region (egress if p > 0).
        launches = [np.full((n, w), inf) for _ in range(regions)]
        for s in live:
            t = t0[s]
            # u in [lo, hi] maps to p = t - u in [t - hi, t - lo], all in [0, C).
            lo, hi = max(0, t - c + 1), min(top, t)
            if lo <= hi:
                for r in range(regions):
                    seg = idle[r][s, t - hi : t - lo + 1]
                    np.minimum(seg, pools[r][s, lo : hi + 1][::-1], out=seg)
            # u' in [lo, hi] maps to p = t + d - u' in [t + d - hi, t + d - lo].
            lo, hi = max(k, t + k - c + 1), min(top, t + k)
            if lo > hi:
                continue
            for r in range(regions):
                seg = idle[r][s, t + k - hi : t + k - lo + 1][::-1]
                target = launches[r][s, lo : hi + 1]
                np.minimum(target, seg, out=target)
                if regions > 1:
                    for other in range(regions):
                        if other == r:
                            continue
                        moved = idle[other][s, t + k - hi : t + k - lo + 1][::-1] + migration_cost
                        if t + k - hi == 0:  # p = 0 moves nothing: no egress
                            moved[-1] -= migration_cost
                        np.minimum(target, moved, out=target)
        for r in range(regions):
            head = ondemand[r][:, :w]
            np.minimum(head, launches[r], out=head)
            for z in in_region[r]:
                blocked = np.where(avail[z], 0.0, inf)[:, None]  # no launch into no capacity
                head = spot[z][:, :w]
                np.minimum(head, launches[r] + blocked, out=head)
        # 3. Run through the row: states whose work ends inside it finish (at time C + u).
        # (Starts past their horizon read a clipped row: they are not live any more.)
        length = (times[row + 1] - times[row]).astype(np.float64)[:, None]
        spot_unit = [market.spot_price[z, row][:, None] * unit_h for z in range(zones)]
        for s in live:
            t = t0[s]
            upto = min(top, t + int(length[s, 0]) - c)
            if upto < 0:
                continue
            partial = c + np.arange(upto + 1) - t
            for z in range(zones):
                done = spot[z][s, : upto + 1] + spot_unit[z][s, 0] * partial
                np.minimum(best[s, : upto + 1], done, out=best[s, : upto + 1])
                spot[z][s, : upto + 1] = inf
            for r in range(regions):
                done = ondemand[r][s, : upto + 1] + od_unit[r] * partial
                np.minimum(best[s, : upto + 1], done, out=best[s, : upto + 1])
                ondemand[r][s, : upto + 1] = inf
        for z in range(zones):
            spot[z][:, :w] += spot_unit[z] * length
        for r in range(regions):
            ondemand[r][:, :w] += od_unit[r] * length

    out = np.empty((n, len(limits)))
    running_min = np.minimum.accumulate(best, axis=1)
    for k, limit in enumerate(limits):
        out[:, k] = running_min[:, limit] if limit >= 0 else inf
    return out
