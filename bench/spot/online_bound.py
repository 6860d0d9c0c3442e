"""What the best online policy could do on a zone: a bound on the goal, not a policy.

The omniscient optimum (skyd.policy.optimum) knows the future; an online policy knows
only the past. How much of the gap between them any online policy must keep depends on
the zone: when spot runs are memoryless, nothing observable says which run will last.
This computes the expected cost of the *best* online policy for a single zone under a
renewal model of it: up runs and outages drawn independently from the zone's own run
lengths (all of them, in-sample: more than any policy reading only the past knows).
The policy sees the state exactly, every `--tick-hours` (finer than the probes), and
knows the age of the current run or outage, so it may use every age-based signal.

Dynamic programme (exact for the model): the state is (work left, slack left, what
runs — idle, spot or on demand, and how much of its changeover is left —, up or
down and the run's age); each tick the policy keeps what runs, stops, or launches spot
(when up) or on demand; a launch pays d of changeover at its price before progress;
spot is lost when its zone goes down. Cells on one anti-diagonal of (work, slack) depend
only on the previous one, so each diagonal is one vectorised step.

On a zone whose traces are themselves a renewal process (the synthetic set), the
result bounds every online policy from below, up to the tick. On real traces, whose
runs are correlated, it bounds the policies that plan with run-length statistics.

    python -m bench.spot.online_bound --traces DIR --zone Z[,Z2,...|all] [--replay MODE] [--json]

Prints, per job fraction, the mean cost of the optimum, `up`, `skyd` (same starts as
bench.spot) and the bound's expected cost over the same start states, and each gap as
a ratio of means (cost / optimum − 1). With several zones, each on its own and then
pooled as `bench.spot` pools a sweep: the mean over all runs of cost / optimum − 1.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean

import numpy as np
import numpy.typing as npt

from bench.spot.engine import HISTORY_HOURS, Job, PreparedZones, prepare, simulate
from bench.spot.sweep import Lengths, cached_optimum, lengths, start_rows, zone_set_label
from skyd.market.traces import TraceSet, load_trace_set
from skyd.policy import POLICIES
from skyd.policy.baselines import EPS, on_demand_target, spot_still_available, step_margin
from skyd.policy.state import IDLE, Decision, PolicyState, SpotPolicy, Target

FloatArray = npt.NDArray[np.float64]
Row = dict[str, float]  # one job fraction's figures

# Cost of an infeasible state (the deadline would be missed): finite so that a zero
# probability times it stays zero, and far above any job's cost.
INFEASIBLE = 1e12


@dataclass(frozen=True, slots=True)
class RenewalModel:
    """Per-tick end probabilities of up runs and outages by age (ages capped at `cap`)."""

    tick_hours: float
    up_hazard: FloatArray  # (cap + 1,): P(the up run ends this tick | it reached this age)
    down_hazard: FloatArray


def hazards(runs_hours: FloatArray, tick_hours: float, cap: int) -> FloatArray:
    """Discrete hazard of a run length by age in ticks; the tail past `cap` pooled."""
    ticks = np.maximum(1, np.round(runs_hours / tick_hours)).astype(np.int64)
    out = np.zeros(cap + 1)
    for age in range(cap):
        alive = np.count_nonzero(ticks > age)
        out[age] = np.count_nonzero(ticks == age + 1) / alive if alive else 1.0
    tail = ticks[ticks > cap]
    # Past the cap, an exponential tail with the observed mean excess.
    out[cap] = 1.0 / (1.0 + float(np.mean(tail - cap))) if len(tail) else 1.0
    return out


def fit_model(
    times_hours: FloatArray,
    available: npt.NDArray[np.bool_],
    tick: float,
    cap: int,
    settled: bool = False,
) -> RenewalModel:
    """Run lengths (by timestamps, so irregular probes count right) of a trace's rows.

    `settled`: the rows are a history up to now, whose last run is still going on and
    is left out (as skyd's policy leaves it out).
    """
    if len(available) < 2:
        return RenewalModel(tick, np.ones(cap + 1), np.ones(cap + 1))
    change = np.flatnonzero(available[1:] != available[:-1]) + 1
    bounds = np.concatenate(([0], change, [len(available)]))
    ends = np.append(times_hours, times_hours[-1] + np.median(np.diff(times_hours)))
    run_len = ends[bounds[1:]] - ends[bounds[:-1]]
    state = available[bounds[:-1]]
    if settled:
        run_len, state = run_len[:-1], state[:-1]
    return RenewalModel(
        tick, hazards(run_len[state], tick, cap), hazards(run_len[~state], tick, cap)
    )


# What the policy does with the instance it has, per (mode, availability) state. The
# order breaks ties: keeping, then spot, then on demand, then stopping (idling when it
# costs the model nothing still spends real slack).
KEEP, LAUNCH_SPOT, LAUNCH_ON_DEMAND, STOP = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class Solution:
    """The DP's expected cost from idle per availability state; its actions if recorded.

    `actions[work, slack, mode, availability]` (ticks; modes as in `solve`).
    """

    idle_costs: FloatArray
    actions: npt.NDArray[np.int8] | None


def solve(
    model: RenewalModel,
    work_ticks: int,
    slack_ticks: int,
    changeover_ticks: int,
    spot_price: float,
    on_demand_price: float,
    record: bool = False,
) -> Solution:
    """The DP over (work, slack, mode, availability); with `record`, its actions too.

    `idle_costs[a]`: the best online policy's expected cost from idle in availability
    state a (0..cap up with that age in ticks, cap+1..2cap+1 down with that age).
    Modes: 0 idle; 1..k+1 spot with k..0 ticks of changeover left; k+2..2k+2 on demand.
    """
    cap = len(model.up_hazard) - 1
    n_av = 2 * (cap + 1)
    k = changeover_ticks
    n_m = 2 * k + 3
    spot = np.arange(1, k + 2)
    demand = np.arange(k + 2, 2 * k + 3)
    # Availability transition as (next state if it holds, next state if it flips, P(flip)).
    ages = np.arange(cap + 1)
    older = np.minimum(ages + 1, cap)
    hold = np.concatenate((older, cap + 1 + older))
    flip = np.concatenate((np.full(cap + 1, cap + 1), np.zeros(cap + 1, dtype=np.int64)))
    p_flip = np.concatenate((model.up_hazard, model.down_hazard))
    is_up = np.arange(n_av) <= cap
    tick = model.tick_hours

    def expect(values: FloatArray) -> FloatArray:
        """E over the next availability state; values (..., n_av) indexed by it."""
        result: FloatArray = (1 - p_flip) * values[..., hold] + p_flip * values[..., flip]
        return result

    def after_tick(prev_slack: FloatArray, prev_work: FloatArray) -> FloatArray:
        """Q(post-decision mode, availability) from the values one tick on (cells, n_m, n_av)."""
        cells = prev_slack.shape[0]
        q = np.empty((cells, n_m, n_av))
        q[:, 0] = expect(prev_slack[:, 0])
        for kind, price, modes in ((True, spot_price, spot), (False, on_demand_price, demand)):
            for i, mode in enumerate(modes):
                left = k - i
                nxt = prev_slack[:, mode + 1] if left > 0 else prev_work[:, mode]
                if kind:
                    # Spot is lost when the zone goes down: the job is idle then.
                    idle_source = prev_slack[:, 0] if left > 0 else prev_work[:, 0]
                    nxt = np.where(is_up, nxt, idle_source)
                q[:, mode] = price * tick + expect(nxt)
        q[:, spot] = np.where(is_up, q[:, spot], INFEASIBLE)
        return q

    def decide(q: FloatArray) -> tuple[FloatArray, npt.NDArray[np.int8]]:
        """V(mode, availability) and its action: keep, stop, or launch spot or on demand."""
        options = np.stack(
            [q] + [np.broadcast_to(q[:, m][:, None, :], q.shape) for m in (spot[0], demand[0], 0)]
        )
        options = options.copy()
        # Not choices: keeping idle is stopping, and relaunching what already runs.
        options[KEEP][:, 0] = np.inf
        options[LAUNCH_SPOT][:, spot] = np.inf
        options[LAUNCH_ON_DEMAND][:, demand] = np.inf
        action = np.argmin(options, axis=0).astype(np.int8)
        v = np.min(options, axis=0)
        # A spot instance in a zone that is down is already gone: it is idle.
        v[:, spot] = np.where(is_up, v[:, spot], v[:, 0][:, None, :])
        return v, action

    actions = np.zeros((work_ticks + 1, slack_ticks + 1, n_m, n_av), np.int8) if record else None
    # Values on the previous anti-diagonal (work + slack = diagonal - 1), by slack.
    done = np.zeros((n_m, n_av))
    infeasible = np.full((n_m, n_av), INFEASIBLE)
    previous: dict[int, FloatArray] = {}
    for diagonal in range(work_ticks + slack_ticks + 1):
        s_lo = max(0, diagonal - work_ticks)
        s_hi = min(slack_ticks, diagonal)
        slacks = np.arange(s_lo, s_hi + 1)
        works = diagonal - slacks
        prev_slack = np.stack(
            [previous.get(int(s) - 1, infeasible) if s > 0 else infeasible for s in slacks]
        )
        prev_work = np.stack(
            [
                done if w - 1 <= 0 else previous.get(int(s), infeasible)
                for s, w in zip(slacks, works, strict=True)
            ]
        )
        values, action = decide(after_tick(prev_slack, prev_work))
        values = np.minimum(values, INFEASIBLE)
        values[works == 0] = 0.0
        if actions is not None:
            actions[works, slacks] = action
        previous = {int(s): values[i] for i, s in enumerate(slacks)}
    idle: FloatArray = previous[slack_ticks][0]
    return Solution(idle, actions)


class RenewalDP:
    """The DP's actions as a single-zone SpotPolicy, behind Uniform Progress' safety net."""

    name = "renewal_dp"
    safe = True

    def __init__(self, solution: Solution, tick_hours: float, changeover_ticks: int) -> None:
        if solution.actions is None:
            raise ValueError("RenewalDP needs a solution solved with record=True")
        self.actions = solution.actions
        self.tick = tick_hours
        self.k = changeover_ticks
        self.cap = self.actions.shape[3] // 2 - 1

    def decide(self, state: PolicyState) -> Decision:
        if state.finished:
            return Decision(IDLE, reason="done")
        zone = state.zones[0]
        current = state.current
        net = 2 * state.changeover_hours + step_margin(state)
        if state.slack_hours < net - EPS and not spot_still_available(state):
            return Decision(on_demand_target(state), reason="safety net")
        work = min(
            self.actions.shape[0] - 1, max(1, math.ceil(state.remaining_hours / self.tick - 1e-6))
        )
        slack = min(self.actions.shape[1] - 1, int(state.slack_hours / self.tick + 1e-6))
        age = min(self.cap, int(zone.run_hours() / self.tick + 1e-6))
        availability = age if zone.available else self.cap + 1 + age
        left = math.ceil(state.overhead_left_hours / self.tick - 1e-6)
        mode = 0
        if current.is_spot:
            mode = 1 + self.k - min(self.k, left)
        elif current.is_on_demand:
            mode = self.k + 2 + self.k - min(self.k, left)
        action = int(self.actions[work, slack, mode, availability])
        target = {
            KEEP: current,
            STOP: IDLE,
            LAUNCH_SPOT: Target.spot(zone.zone, zone.region),
            LAUNCH_ON_DEMAND: on_demand_target(state),
        }[action]
        return Decision(target, recheck_after_hours=self.tick, reason="renewal DP")


def start_state(
    available: npt.NDArray[np.bool_], times_hours: FloatArray, row: int, tick: float, cap: int
) -> int:
    """The availability state (up/down and age in ticks, capped) at a start row."""
    now = bool(available[row])
    first = row
    while first > 0 and bool(available[first - 1]) == now:
        first -= 1
    age = min(cap, int((times_hours[row] - times_hours[first]) / tick))
    return age if now else cap + 1 + age


def replay_costs(
    policy: SpotPolicy | None,
    make: Callable[[int], SpotPolicy] | None,
    prepared: PreparedZones,
    sizes: Lengths,
    fraction_index: int,
    starts: Sequence[int],
) -> list[float]:
    """Cost of each start under `policy` (or the one `make` builds for that start row)."""
    costs = []
    for start in starts:
        chosen = make(start) if make is not None else policy
        assert chosen is not None
        job = Job(start, sizes.job, sizes.deadline_seconds[fraction_index], sizes.changeover, 1.0)
        result = simulate(chosen, prepared, job)
        if result.missed_deadline:
            raise RuntimeError(f"{chosen.name} missed the deadline from row {start}")
        costs.append(result.cost)
    return costs


def zone_report(args: argparse.Namespace, traces: TraceSet, zone_name: str) -> dict[str, Row]:
    """Per job fraction: the optimum, the bound, `up`, `skyd` (and the DP replayed) on one zone."""
    k = round(args.changeover_hours / args.tick_hours)
    fractions = tuple(float(f) for f in args.job_fraction.split(","))
    zone = traces.zone(zone_name)
    available = np.asarray(zone.available, dtype=np.bool_)
    times_h = (traces.timestamps - traces.timestamps[0]) / 3600.0
    tick = args.tick_hours
    cap = int(args.age_cap_hours / tick)
    model = fit_model(times_h, available, tick, cap)
    label = zone_set_label(traces, [zone_name])
    sizes = lengths(traces, args.job_hours, fractions, args.changeover_hours)
    prepared = prepare(traces, [zone_name], label, sizes.unit_seconds)
    horizon = math.ceil(max(sizes.deadline_seconds) / sizes.unit_seconds) + 1
    starts = start_rows(prepared.times, horizon, args.starts, args.seed, label)
    optimum = cached_optimum(prepared, starts, sizes, 1.0)
    spot_price = float(np.mean(prepared.market.spot_price[0]))
    on_demand = float(prepared.market.on_demand_price[0])
    states = [start_state(available, times_h, s, tick, cap) for s in starts]
    report: dict[str, Row] = {}
    for fi, fraction in enumerate(fractions):
        work = round(args.job_hours / tick)
        slack = int((args.job_hours / fraction - args.job_hours) / tick + 1e-9)
        record = args.replay == "in-sample"
        solution = solve(model, work, slack, k, spot_price, on_demand, record=record)
        bound = fmean(float(solution.idle_costs[s]) for s in states)
        best = [float(optimum[si, fi]) for si in range(len(starts))]
        opt = fmean(best)
        row = {"optimum": opt, "online_bound": bound, "online_bound_gap": bound / opt - 1}
        row["online_bound_mean_gap"] = fmean(
            float(solution.idle_costs[s]) / b - 1 for s, b in zip(states, best, strict=True)
        )
        replays: dict[str, list[float]] = {
            name: replay_costs(POLICIES[name], None, prepared, sizes, fi, starts)
            for name in ("up", "skyd")
        }
        if args.replay == "in-sample":
            dp = RenewalDP(solution, tick, k)
            replays["renewal_dp"] = replay_costs(dp, None, prepared, sizes, fi, starts)
        elif args.replay == "history":

            def from_history(start: int, work: int = work, slack: int = slack) -> SpotPolicy:
                first = int(np.searchsorted(times_h, times_h[start] - HISTORY_HOURS))
                seen = fit_model(times_h[first:start], available[first:start], tick, cap, True)
                fitted = solve(seen, work, slack, k, spot_price, on_demand, record=True)
                return RenewalDP(fitted, tick, k)

            replays["renewal_dp"] = replay_costs(None, from_history, prepared, sizes, fi, starts)
        for name, costs in replays.items():
            row[name] = fmean(costs)
            row[f"{name}_gap"] = row[name] / opt - 1
            # bench.spot's figure: the mean over runs of cost / optimum - 1.
            row[f"{name}_mean_gap"] = fmean(c / b - 1 for c, b in zip(costs, best, strict=True))
        up_gap = row["up_gap"]
        for name in ("online_bound", *(n for n in replays if n != "up")):
            row[f"{name}_over_up"] = row[f"{name}_gap"] / up_gap if up_gap > 0 else math.nan
        report[f"{fraction:g}"] = row
        if not args.json:
            print(f"{zone_name} {fraction:g}: {_summary(row)}", flush=True)
    return report


def pooled(reports: Mapping[str, Mapping[str, Row]]) -> dict[str, Row]:
    """Per fraction, over all zones, as `bench.spot` pools a sweep: each policy's mean gap
    over every run of every zone (cost / optimum − 1, each run counting once; the bound's
    per start state), and that over `up`'s."""
    out: dict[str, Row] = {}
    for fraction in next(iter(reports.values())):
        rows = [report[fraction] for report in reports.values()]
        # every zone has the same starts, so the mean over runs is the mean of zone means
        up_gap = fmean(r["up_mean_gap"] for r in rows)
        row: Row = {"up_mean_gap": up_gap}
        for name in ("online_bound", "skyd", "renewal_dp"):
            if f"{name}_mean_gap" in rows[0]:
                gap = fmean(r[f"{name}_mean_gap"] for r in rows)
                row[f"{name}_mean_gap"] = gap
                row[f"{name}_over_up"] = gap / up_gap if up_gap > 0 else math.nan
        out[fraction] = row
    return out


def _summary(row: Row, gap: str = "gap") -> str:
    """One line: each gap (`gap`: ratio of means; `mean_gap`: mean over runs) and over up's."""
    extra = ""
    if "renewal_dp_over_up" in row:
        extra = (
            f"  renewal DP replayed {100 * row[f'renewal_dp_{gap}']:.1f}% "
            f"({row['renewal_dp_over_up']:.2f} of up)"
        )
    return (
        f"online bound gap {100 * row[f'online_bound_{gap}']:.1f}% "
        f"({row['online_bound_over_up']:.2f} of up)  up {100 * row[f'up_{gap}']:.1f}%  "
        f"skyd {100 * row[f'skyd_{gap}']:.1f}% ({row['skyd_over_up']:.2f} of up){extra}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.spot.online_bound", description=__doc__)
    p.add_argument("--traces", required=True)
    p.add_argument(
        "--zone",
        required=True,
        help="a zone, several separated by commas (each on its own, then pooled), or 'all'",
    )
    p.add_argument("--job-hours", type=float, default=48.0)
    p.add_argument("--job-fraction", default="0.8,0.9,0.95")
    p.add_argument("--changeover-hours", type=float, default=0.2)
    p.add_argument("--tick-hours", type=float, default=0.05)
    p.add_argument("--age-cap-hours", type=float, default=4.0)
    p.add_argument("--starts", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--replay",
        choices=("none", "in-sample", "history"),
        default="none",
        help="also replay the DP's policy on the trace, its model fitted on the whole "
        "trace (in-sample) or, per start, on the history before it (as skyd sees it)",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    traces = load_trace_set(args.traces)
    zones = list(traces.zone_names) if args.zone == "all" else args.zone.split(",")
    unknown = [z for z in zones if z not in traces.zones]
    if unknown:
        print(
            f"error: --zone {unknown[0]!r} is not in {args.traces}; use one of: "
            f"{', '.join(traces.zone_names)} (or 'all')",
            file=sys.stderr,
        )
        return 2
    k = round(args.changeover_hours / args.tick_hours)
    if abs(k * args.tick_hours - args.changeover_hours) > 1e-9 or k < 1:
        print("error: --tick-hours must divide --changeover-hours", file=sys.stderr)
        return 2
    reports = {zone: zone_report(args, traces, zone) for zone in zones}
    if len(zones) == 1:
        out: dict[str, object] = {"zone": zones[0], "replay": args.replay}
        out["fractions"] = reports[zones[0]]
    else:
        together = pooled(reports)
        out = {"zones": reports, "replay": args.replay, "pooled": together}
        if not args.json:
            for fraction, row in together.items():
                print(f"pooled {fraction} (mean over runs): {_summary(row, 'mean_gap')}")
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
