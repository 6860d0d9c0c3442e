"""How long one policy decision takes: replays jobs, records every state, times decide() on each.

The simulator's own bookkeeping is left out: the states a policy was asked about are
recorded during a replay, then each is decided again `--repeat` times on its own. The
simulator hands a policy precomputed history summaries (prefix sums); the daemon does
not, so each state is also timed with them dropped (`daemon_ms`: the policy computes
them from the raw history, as in the daemon).
Figures are wall-clock on a shared machine, so they are upper bounds; the JSON output
also gives the ratio to `up` timed on the same states in the same run.

    python -m bench.spot.latency --traces /work/shared/data/spot-traces/aws-v100-2023 \\
        --zones us-east-1c --starts 20 --json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

from bench.spot.engine import Job, prepare, simulate
from bench.spot.sweep import lengths, start_rows, zone_set_label
from skyd.market.traces import load_trace_set
from skyd.policy import POLICIES
from skyd.policy.state import Decision, PolicyState, SpotPolicy


class Recorder:
    """Wraps a policy and keeps every state it is asked about."""

    def __init__(self, policy: SpotPolicy) -> None:
        self.policy = policy
        self.name = policy.name
        self.safe = policy.safe
        self.states: list[PolicyState] = []

    def decide(self, state: PolicyState) -> Decision:
        self.states.append(state)
        return self.policy.decide(state)


def record_states(
    traces_dir: str,
    zones: Sequence[str],
    policy: SpotPolicy,
    starts: int,
    fraction: float,
    changeover: float,
    job_hours: float,
) -> list[PolicyState]:
    traces = load_trace_set(traces_dir)
    label = zone_set_label(traces, zones)
    sizes = lengths(traces, job_hours, (fraction,), changeover)
    prepared = prepare(traces, list(zones), label, sizes.unit_seconds)
    horizon = math.ceil(sizes.deadline_seconds[0] / sizes.unit_seconds) + 1
    recorder = Recorder(policy)
    for start in start_rows(prepared.times, horizon, starts, 0, label):
        job = Job(start, sizes.job, sizes.deadline_seconds[0], sizes.changeover, 1.0)
        simulate(recorder, prepared, job)
    return recorder.states


def time_decisions(policy: SpotPolicy, states: Sequence[PolicyState], repeat: int) -> list[float]:
    """Seconds per decision, one figure per state (the best of `repeat` tries)."""
    out = []
    for state in states:
        best = math.inf
        for _ in range(repeat):
            began = time.perf_counter()
            policy.decide(state)
            best = min(best, time.perf_counter() - began)
        out.append(best)
    return out


def without_summaries(state: PolicyState) -> PolicyState:
    """The state as the daemon builds it: raw history only, no precomputed summaries."""
    zones = tuple(replace(z, settled=None, current_run=None) for z in state.zones)
    return replace(state, zones=zones)


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": 1e3 * quantile(values, 0.5),
        "p99": 1e3 * quantile(values, 0.99),
        "max": 1e3 * max(values),
    }


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.spot.latency", description=__doc__)
    p.add_argument("--traces", required=True)
    p.add_argument("--zones", required=True, help="comma-separated zone set (one or several)")
    p.add_argument("--policy", default="skyd")
    p.add_argument("--starts", type=int, default=20)
    p.add_argument("--job-fraction", type=float, default=0.9)
    p.add_argument("--changeover-hours", type=float, default=0.2)
    p.add_argument("--job-hours", type=float, default=48.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.policy not in POLICIES:
        print(
            f"error: --policy: unknown {args.policy}; known: {', '.join(POLICIES)}", file=sys.stderr
        )
        return 2
    if args.starts < 1 or args.repeat < 1:
        print("error: --starts and --repeat must be positive", file=sys.stderr)
        return 2
    zones = [z.strip() for z in args.zones.split(",") if z.strip()]
    policy = POLICIES[args.policy]
    try:
        states = record_states(
            args.traces,
            zones,
            policy,
            args.starts,
            args.job_fraction,
            args.changeover_hours,
            args.job_hours,
        )
    except (KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    timed = time_decisions(policy, states, args.repeat)
    raw = time_decisions(policy, [without_summaries(s) for s in states], args.repeat)
    baseline = time_decisions(POLICIES["up"], states, args.repeat)
    report = {
        "policy": args.policy,
        "zones": zones,
        "decisions": len(states),
        "ms": summary_ms(timed),
        "daemon_ms": summary_ms(raw),
        "ratio_to_up_median": quantile(timed, 0.5) / max(quantile(baseline, 0.5), 1e-12),
    }
    if args.json:
        print(json.dumps(report))
    else:
        for key in ("ms", "daemon_ms"):
            ms = report[key]
            print(
                f"{args.policy} on {'+'.join(zones)} ({key}): {len(states)} decisions, "
                f"median {ms['median']:.3f} ms, p99 {ms['p99']:.3f} ms, max {ms['max']:.3f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
