"""What the daemon's spot availability history costs a deadline decision, and how often the
daemon and bench.spot decide alike on a real (irregularly probed) trace.

The shipped V100 set (9 zones, 195 s probes) replayed by the sim cloud on a virtual clock,
its past loaded into a real SQLite store; then, at each of `--decisions` consecutive trace
rows, the policy decides once for a job submitted at the first, over all nine zones: with
each zone's history read from the store's log and resampled onto the grid (what the
daemon does), and, the baseline in the same run, with no history (what it did before).

`--parity`: each zone alone, three job starts, a decision every 7th row over 800 rows in
eight job situations, from the simulator's view of the trace (bench.spot.engine) and from
the daemon's; the share of equal targets. (On a regular grid they are equal every time:
tests/policy/test_policy_daemon_parity.py. The V100 probes wander by a second or two
around 195 s, which a regular grid cannot follow row for row.)

    python -m bench.spot_history --traces ../shared/data/spot-traces/aws-v100-2023 --json
    python -m bench.spot_history --traces ../shared/data/spot-traces/aws-v100-2023 --parity --json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from skyd.clock import VirtualClock
from skyd.config import RecoverySettings
from skyd.market.availability_log import AvailabilityLog
from skyd.market.replay import TraceReplay
from skyd.market.traces import load_trace_set, shipped_trace_dir
from skyd.policy import POLICIES, PolicyState
from skyd.policy.state import IDLE
from skyd.providers.sim import SimProvider
from skyd.scheduler import recovery
from skyd.store import open_store


def run(traces_dir: Path, decisions: int, start_row: int) -> dict[str, float | int]:
    traces = load_trace_set(traces_dir)
    stamps = traces.timestamps
    start = min(start_row, len(stamps) - decisions - 1)
    clock = VirtualClock(float(stamps[start]))
    replay = TraceReplay(traces, clock, anchor=float(stamps[0]))  # clock time = trace time
    with tempfile.TemporaryDirectory(prefix="spot-history-") as tmp:
        sim = SimProvider(replay, clock, Path(tmp) / "sim")
        store = open_store(Path(tmp) / "state")
        try:
            settings = RecoverySettings()
            log = AvailabilityLog(
                store=store, clock=clock, settings=settings, providers={"sim": sim}
            )
            keys = {o.zone: o.key for o in sim.offers() if o.spot_price_micros is not None}
            since = float(stamps[start]) - settings.history_hours * 3600
            names = traces.zone_names
            on_demand = {traces.zone(z).region: traces.zone(z).on_demand_price for z in names}
            policy = POLICIES["skyd"]
            began = time.perf_counter()
            log.zone_history(keys[names[0]], since)  # loads the trace's past, once
            load_s = time.perf_counter() - began

            def decide(row: int, with_history: bool) -> None:
                clock.set(float(stamps[row]))
                zones = tuple(
                    recovery.zone_market(
                        z,
                        traces.zone(z).region,
                        replay.available(z),
                        replay.spot_price(z),
                        log.zone_history(keys[z], since) if with_history else None,
                    )
                    for z in names
                )
                elapsed = (stamps[row] - stamps[start]) / 3600
                policy.decide(
                    PolicyState(
                        job_hours=24.0,
                        done_hours=0.5 * elapsed,
                        deadline_hours=36.0,
                        elapsed_hours=elapsed,
                        changeover_hours=settings.changeover_hours,
                        current=IDLE,
                        zones=zones,
                        on_demand_prices=on_demand,
                        step_hours=1 / 3600,
                    )
                )

            timings = {}
            for label, flag in (("without", False), ("with", True)):
                began = time.perf_counter()
                for row in range(start, start + decisions):
                    decide(row, flag)
                timings[label] = (time.perf_counter() - began) / decisions
            rows = int(store.conn.execute("SELECT COUNT(*) FROM spot_availability").fetchone()[0])
        finally:
            store.close()
    return {
        "zones": len(names),
        "decisions": decisions,
        "history_samples_per_zone_at_start": int(settings.history_hours * 3600 / log.step_seconds),
        "store_rows": rows,
        "past_load_ms": round(load_s * 1000, 2),
        "decision_ms_without_history": round(timings["without"] * 1000, 4),
        "decision_ms_with_history": round(timings["with"] * 1000, 4),
        "ratio_with_to_without": round(timings["with"] / timings["without"], 2),
    }


def parity(traces_dir: Path) -> dict[str, float | int]:
    from dataclasses import replace

    from bench.spot.engine import HISTORY_HOURS, lattice_seconds, prepare, zone_market
    from skyd.policy import Target

    traces = load_trace_set(traces_dir)
    stamps = traces.timestamps
    policy = POLICIES["skyd"]
    settings = RecoverySettings()
    total = same = 0
    starts = [s for s in (4000, 9000, 14000) if s + 800 < len(stamps)] or [len(stamps) // 3]
    for name in traces.zone_names:
        region = traces.zone(name).region
        one = traces.select([name])
        prepared = prepare(one, [name], "parity", lattice_seconds(one.tick_seconds, 0.2, 12.0))
        lo_rows = int(HISTORY_HOURS / prepared.nominal_tick_hours)
        for start in starts:
            end = min(start + 800, len(stamps) - 1)
            with tempfile.TemporaryDirectory(prefix="spot-parity-") as tmp:
                clock = VirtualClock(float(stamps[end]))
                replay = TraceReplay(one, clock, anchor=float(stamps[0]))
                sim = SimProvider(replay, clock, Path(tmp) / "sim")
                store = open_store(Path(tmp) / "state")
                try:
                    log = AvailabilityLog(
                        store=store, clock=clock, settings=settings, providers={"sim": sim}
                    )
                    key = sim.offers()[0].key
                    since = float(stamps[start]) - HISTORY_HOURS * 3600
                    log.zone_history(key, since)  # the trace up to `end`, as its past
                    for row in range(start, end, 7):
                        clock.set(float(stamps[row]))
                        theirs = zone_market(prepared, 0, region, row, max(0, start - lo_rows))
                        ours = recovery.zone_market(
                            name,
                            region,
                            replay.available(name),
                            replay.spot_price(name),
                            log.zone_history(key, since),
                        )
                        elapsed = (stamps[row] - stamps[start]) / 3600
                        for slack in (0.5, 1.0, 2.0, 4.0):
                            for current in (IDLE, Target.on_demand(region)):
                                state = PolicyState(
                                    job_hours=12.0,
                                    done_hours=3.0,
                                    deadline_hours=elapsed + 9.0 + slack,
                                    elapsed_hours=elapsed,
                                    changeover_hours=0.2,
                                    current=current,
                                    zones=(theirs,),
                                    on_demand_prices={region: 3.06},
                                    step_hours=prepared.step_hours,
                                )
                                simulated = policy.decide(state).target
                                daemon = policy.decide(replace(state, zones=(ours,))).target
                                total += 1
                                same += int(simulated == daemon)
                finally:
                    store.close()
    return {"decisions": total, "same_target": same, "share_same": round(same / total, 4)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.spot_history", description=__doc__)
    parser.add_argument("--traces", type=Path, default=shipped_trace_dir())
    parser.add_argument("--decisions", type=int, default=400)
    parser.add_argument("--start-row", type=int, default=12_000)
    parser.add_argument("--parity", action="store_true", help="daemon vs simulator decisions")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.decisions < 1:
        print(f"--decisions: {args.decisions} must be at least 1", file=sys.stderr)
        return 2
    if args.parity:
        result = parity(args.traces)
    else:
        result = run(args.traces, args.decisions, args.start_row)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
