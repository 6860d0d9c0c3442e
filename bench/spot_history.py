"""What the daemon's spot availability history costs a deadline decision.

The shipped V100 set (9 zones, 195 s probes) replayed by the sim cloud on a virtual clock,
its past loaded into a real SQLite store; then, at each of `--decisions` consecutive trace
rows, the policy decides once for a job submitted at the first, over all nine zones: with
each zone's history read from the store's log and resampled onto the grid (what the
daemon does), and, the baseline in the same run, with no history (what it did before).

    python -m bench.spot_history --traces ../shared/data/spot-traces/aws-v100-2023 --json
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.spot_history", description=__doc__)
    parser.add_argument("--traces", type=Path, default=shipped_trace_dir())
    parser.add_argument("--decisions", type=int, default=400)
    parser.add_argument("--start-row", type=int, default=12_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.decisions < 1:
        print(f"--decisions: {args.decisions} must be at least 1", file=sys.stderr)
        return 2
    result = run(args.traces, args.decisions, args.start_row)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
