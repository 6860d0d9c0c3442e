"""Daemon reaction to a preemption: from the sim trace withdrawing spot capacity (the moment
the daemon observes it) to the replacement launch being requested.

A trace with ten cheap zones that lose capacity one after another and one dear zone that
never does: a FAILOVER spot job hops zone to zone, giving one sample per preemption. The
baseline in the same run is the scheduler's own tick (the worst case of polling alone).

    python -m bench.recovery_reaction [--zones 10] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until

GAP_ROWS = 3  # a cheap zone loses capacity every 3 rows (1 s each)

TASK = """\
name: hopper
resources:
  accelerators: V100:1
  use_spot: true
job_recovery:
  strategy: FAILOVER
run: sleep 600
"""


def write_trace(root: Path, cheap: int) -> None:
    root.mkdir()
    rows = 3 * GAP_ROWS * (cheap + 2)
    start = dt.datetime(2026, 1, 1)
    stamps = [(start + dt.timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S") for i in range(rows)]
    zones: dict[str, dict[str, object]] = {}
    for index in range(cheap + 1):
        name = f"z{index:02d}"
        if index < cheap:
            lost_at = GAP_ROWS * (index + 2)
            values = [1 if row < lost_at else 0 for row in range(rows)]
            price = 1.0 + 0.01 * index
        else:
            values = [1] * rows
            price = 2.5
        lines = ["date,availability", *(f"{s},{v}" for s, v in zip(stamps, values, strict=True))]
        (root / f"{name}.csv").write_text("\n".join(lines) + "\n")
        zones[name] = {"region": "r1", "availability_file": f"{name}.csv", "spot_price": price}
    meta = {
        "name": "hop",
        "cloud": "aws",
        "instance_type": "p3.2xlarge",
        "accelerator": "V100:1",
        "on_demand_price": 3.06,
        "zones": zones,
    }
    (root / "meta.json").write_text(json.dumps(meta))


def relaunches(events: list[dict[str, Any]]) -> int:
    """Preemptions already followed by the replacement's launch (PROVISIONING)."""
    count, preempted = 0, False
    for event in events:
        if event["kind"] == "preempted":
            preempted = True
        elif preempted and event["state"] == "PROVISIONING":
            count, preempted = count + 1, False
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # a job may start late and miss the first zone, so it waits for one preemption fewer
    parser.add_argument("--zones", type=int, default=10, help="cheap zones (>= 2); one sample each")
    parser.add_argument("--json", action="store_true", help="print one JSON object, no summary")
    args = parser.parse_args()
    if args.zones < 2:
        parser.error(f"--zones {args.zones}: at least 2")
    zones = args.zones
    with tempfile.TemporaryDirectory(prefix="skyd-reaction-") as tmp:
        root = Path(tmp)
        write_trace(root / "trace", zones)
        settings = settings_for_tests(root)
        settings.sim.enabled = True
        settings.sim.traces = root / "trace"
        settings.sim.speedup = 1.0
        settings.sim.provisioning_delay_seconds = 0.0
        settings.scheduler_tick_seconds = 1.0  # reaction must not depend on the tick
        daemon = DaemonThread(settings).start()
        try:
            with DaemonClient(daemon.socket_path) as client:
                job_id = int(client.submit_task(TASK, str(root), None)["id"])
                # wait for the replacement launches too, not only the preemptions: a sample is
                # the time from a withdrawal to the launch that replaces what it took
                wait_until(
                    lambda: relaunches(client.get_job(job_id)["events"]) >= zones - 1, timeout=120
                )
                events = client.get_job(job_id)["events"]
                all_events = []
                for event in client.events(since=0):
                    if event.get("kind") == "heartbeat":
                        break
                    all_events.append(event)
                    if event.get("seq") == events[-1]["seq"]:
                        break
                client.cancel_job(job_id)
        finally:
            daemon.stop()
    withdrawals = {}
    for event in all_events:
        data = event.get("data") or {}
        if (
            event.get("kind") == "market"
            and data.get("what") == "availability"
            and data.get("new") == 0.0
        ):
            withdrawals[str(data["scope"]).split("/")[2]] = float(event["at"])
    reactions = []
    preempted = [e for e in events if e["kind"] == "preempted"]
    for event in preempted:
        zone = str(event["data"]["zone"]).split("/")[2]
        relaunch = next(
            e for e in events if e["seq"] > event["seq"] and e["state"] == "PROVISIONING"
        )
        if zone in withdrawals:
            reactions.append(relaunch["at"] - withdrawals[zone])
    result = {
        "preemptions": len(preempted),
        "samples": len(reactions),
        "reaction_median_ms": 1000 * statistics.median(reactions),
        "reaction_max_ms": 1000 * max(reactions),
        "scheduler_tick_ms": 1000 * settings.scheduler_tick_seconds,
        "median_vs_tick": statistics.median(reactions) / settings.scheduler_tick_seconds,
        "target_ms": 1000,
    }
    print(json.dumps(result, indent=2))
    if not args.json:
        print(
            f"preemption -> replacement launch: median {result['reaction_median_ms']:.0f} ms over "
            f"{len(reactions)} samples ({result['median_vs_tick']:.2f}x the scheduler tick)",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
