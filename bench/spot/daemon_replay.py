"""The spot policy end to end: a deadline job through the real daemon, against bench.spot.

bench.spot replays the policy in a simulator. This runs the same job from the same start
rows through the daemon itself: a real Daemon (store on a SQLite file, scheduler,
market, availability log, the `sim` cloud replaying the trace, a real job process) on a
virtual clock the benchmark moves on one scheduler tick at a time, running a pass after
each. The job is a process that runs until told its work is done: when its time in
RUNNING (the daemon's own measure of progress) reaches the job length. Its cost is what
the daemon's ledger charged. Beside it, per start: bench.spot's simulated cost of the same
policy, the omniscient optimum, and what the daemon did (placements, preemptions, moves).

    python -m bench.spot.daemon_replay --zones us-east-1c --job-hours 12 \\
        --job-fraction 0.8 --starts 6 --json

The daemon cannot match the simulator to the cent: it bills each instance at its launch
price (the simulator at every probe's), and it shows the policy its availability log
resampled onto a regular grid (the simulator shows the trace's rows): jittered or late
probes move a sample here and there, which settles a near tie between two zones
otherwise now and then (13-zone set below, start 1834: swapping only the zones'
histories into the simulator's state at 1.0 h turns its syn-europe-c into the daemon's
syn-central-a). A changeover (launch to the job's start) takes d on both sides: the sim
cloud boots in d and the clock lands on the second the instance is up (the summary gives
the mean, and the longest changeover the policy planned with: d, unless the daemon
measured its launches taking longer).

The two also decide at different intervals, which moves the policy's safety net where a
trace has late probes. The simulator asks the policy at probes (and at the first probe
at or after a recheck it asked for), so it tells it the set's longest probe interval as
`step_hours`; the daemon asks at least every tick (60 s). The policy keeps what that
step exceeds d by as a margin (`step_margin`): none on 300 s probes (longest 453 s),
but 183 s on 10-minute probes with one 903 s late (`simulated_step_seconds`). A job at
0.95 has 0.632 h of slack, 0.432 h after its first changeover: between 2d = 0.4 h and
2d plus that margin (0.451 h). After a preemption the simulator's policy goes to on
demand to the end (safety net), the daemon's back to spot. On a synthetic set of 13
zones in 4 regions (10-minute probes, 37 of 4319 late by half an interval; 12 h job, 5
starts at 0.95) that made the daemon 0.69 (0.34-1.00) of the simulated cost. The summary
also gives the simulator planning with the daemon's tick (`simulated_cost_at_daemon_step`;
the daemon is 0.99 (0.92-1.01) of it there, 0.92 being the near tie above). Neither side
is wrong: the tick is the daemon's real interval, and the simulator's margin keeps its own
late answers safe.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import dataclasses
import json
import math
import os
import statistics
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from bench.spot.engine import Job, PreparedZones, prepare, simulate
from bench.spot.sweep import cached_optimum, lengths, start_rows, zone_set_label
from skyd.clock import VirtualClock
from skyd.daemon import Daemon
from skyd.identity import Caller
from skyd.market.traces import TraceSet, load_trace_set
from skyd.model import JobState
from skyd.policy import POLICIES
from skyd.scheduler import recovery
from skyd.scheduler.driver import JobScheduler
from skyd.spec.parse import parse_task
from skyd.store import Store
from skyd.store import jobs as job_store
from skyd.store.records import EventRecord
from skyd.testing.daemon import settings_for_tests

SHIPPED = Path(__file__).resolve().parents[2].parent / "shared/data/spot-traces/aws-v100-2023"
TERMINAL = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


def zone_subset(traces_dir: Path, zones: Sequence[str], out: Path) -> Path:
    """A trace directory holding only `zones` (the sim cloud replays every zone it is given)."""
    meta = json.loads((traces_dir / "meta.json").read_text())
    unknown = [z for z in zones if z not in meta["zones"]]
    if unknown:
        raise SystemExit(f"error: --zones: {', '.join(unknown)} not in {traces_dir}/meta.json")
    meta["zones"] = {z: meta["zones"][z] for z in zones}
    out.mkdir(parents=True)
    for entry in traces_dir.iterdir():
        if entry.name != "meta.json":
            (out / entry.name).symlink_to(entry.resolve())
    (out / "meta.json").write_text(json.dumps(meta))
    return out


def task_yaml(job_hours: float, deadline_hours: float, done_file: Path) -> str:
    return (
        "name: daemon-replay\n"
        "resources:\n  accelerators: V100:1\n"
        f"estimated_runtime: {job_hours * 3600:.0f}s\n"
        f"deadline: {deadline_hours * 3600:.0f}s\n"
        "job_recovery:\n  strategy: deadline\n"
        f'run: while [ ! -f "{done_file}" ]; do sleep 0.02; done\n'
    )


async def run_daemon(
    root: Path,
    traces_dir: Path,
    offset_seconds: float,
    clock_start: float,
    job_hours: float,
    deadline_hours: float,
    changeover_hours: float,
    tick_seconds: float,
) -> dict[str, Any]:
    """One job through the daemon from the trace's `offset_seconds`: its cost and story."""
    settings = settings_for_tests(root)
    settings.sim.enabled = True
    settings.sim.traces = traces_dir
    settings.sim.speedup = 1.0
    settings.sim.start_offset_seconds = offset_seconds
    # the instance boots in d and the clock lands on the second it is up, so a changeover
    # takes the d the policy plans with (in earnest `[recovery] changeover_hours` must
    # cover launch, boot and setup). Booting a tick short of d and leaving it to the next
    # pass made it 660 s to 719 s of 720 as the probes fell, at times 899 s: slack the
    # simulator does not have, or a deadline missed by a minute.
    boot = changeover_hours * 3600.0
    settings.sim.provisioning_delay_seconds = boot
    settings.recovery.changeover_hours = changeover_hours
    settings.scheduler_tick_seconds = tick_seconds
    clock = VirtualClock(clock_start)
    # the trace's probe times on this clock (and one far past the horizon)
    stamps = load_trace_set(traces_dir).timestamps
    rows = [clock_start + float(t - stamps[0]) - offset_seconds for t in stamps] + [math.inf]
    daemon = Daemon(settings, clock=clock)
    running = asyncio.create_task(daemon.run())
    await daemon.ready.wait()
    scheduler = daemon.scheduler
    assert scheduler is not None
    done_file = root / "done"
    spec = parse_task(task_yaml(job_hours, deadline_hours, done_file), base_dir=root)
    job = scheduler.submit(spec, caller=Caller(os.getuid(), True), base_dir=str(root))
    store = scheduler.store
    horizon = clock.now() + deadline_hours * 3600.0 + 3600.0
    worked = 0.0
    starting = 0  # real-time waits for the job's process to start
    try:
        await settle(scheduler, store, job.id)  # placed at once: a submission wakes the loop
        while True:
            record = job_store.get_job(store, job.id)
            if record.state in TERMINAL:
                break
            if not done_file.exists():
                worked = recovery.running_seconds(job_store.job_events(store, job.id), clock.now())
                if worked >= job_hours * 3600.0:
                    done_file.write_text("done\n")  # the process exits; time stands still
                elif clock.now() >= horizon:
                    raise RuntimeError(f"job {job.id} still {record.state} after its deadline")
                elif record.state == JobState.SETTING_UP and starting < 500:
                    # its process is starting, in real time: the clock waits for it (up
                    # to 5 s), or on a loaded machine the start is seen a tick late, the
                    # changeover measured at d plus a tick and planned with from then on
                    starting += 1
                    await asyncio.sleep(0.01)
                else:
                    starting = 0
                    # a tick, but land on the next probe (the daemon reacts to a change at
                    # once; a pass at the tick's end would be late), on the second the
                    # instance is up and on the second the work is done
                    now = clock.now()
                    step = min(tick_seconds, rows[bisect.bisect_right(rows, now)] - now)
                    if record.state == JobState.RUNNING:
                        step = min(step, job_hours * 3600.0 - worked)
                    up = booted_at(job_store.job_events(store, job.id), boot)
                    if up is not None and up > now:
                        step = min(step, up - now)
                    await clock.advance(step)
                    if up is not None and now < up <= clock.now():
                        # the boot is seen at once, as the sim cloud's preemptions are: not
                        # from the tick's instance states taken before it was up
                        scheduler.attempts.states.expire()
                    # let the sim cloud's watcher report a change (and expire the tick's
                    # instance states) before the pass: the daemon reacts to it at once
                    for _ in range(20):
                        await asyncio.sleep(0)
            else:
                await asyncio.sleep(0.01)  # real time, for the process to notice and exit
            await settle(scheduler, store, job.id)
        events = job_store.job_events(store, job.id)
        record = job_store.get_job(store, job.id)
    finally:
        daemon.request_stop()
        await running
    placements = [e.data["placement"] for e in events if e.state == "PROVISIONING" and e.data]
    changeovers, launched = [], None
    for event in events:  # launch to the job's start, for each attempt that started
        if event.state == "PROVISIONING":
            launched = event.at
        elif event.state == "RUNNING" and launched is not None:
            changeovers.append(event.at - launched)
            launched = None
    return {
        "state": record.state.value,
        "cost": record.cost_micros / 1_000_000,
        "worked_hours": round(worked / 3600.0, 3),
        "finished_hours": round((record.ended_at or clock.now()) - record.created_at, 1) / 3600,
        "missed_deadline": (record.ended_at or math.inf) > (record.deadline or math.inf),
        "placements": [
            ("spot:" if p.get("spot") else "on_demand:") + str(p.get("zone")) for p in placements
        ],
        "preemptions": record.preemptions,
        "moves": sum(1 for e in events if e.kind == "moved"),
        "changeover_seconds": changeovers,
        # what the policy planned with at each placement: the configured d, or the
        # changeover the daemon measured of its launches so far when that was longer
        "planned_changeover_seconds": [
            round(float(p.get("changeover_figures", {}).get("hours", math.nan)) * 3600.0, 1)
            for p in placements
        ],
    }


def booted_at(events: Sequence[EventRecord], boot_seconds: float) -> float | None:
    """When the instance of the job's last launch is up (None: none launched, or it runs)."""
    for event in reversed(events):
        if event.state == "RUNNING":
            return None
        if event.kind == "launched":
            return event.at + boot_seconds
    return None


async def settle(scheduler: JobScheduler, store: Store, job_id: int) -> None:
    """Passes until the job's state holds, as the daemon's loop runs one after every change
    (a preemption's move to RECOVERING is placed at once, not at the next tick)."""
    for _ in range(5):
        before = job_store.get_job(store, job_id)
        await scheduler.reconcile_once()
        await asyncio.gather(*list(scheduler.tasks.inflight.values()))
        after = job_store.get_job(store, job_id)
        if (after.state, after.attempt) == (before.state, before.attempt):
            return


class Simulated(NamedTuple):
    """bench.spot's side of the comparison, per start."""

    starts: list[int]
    costs: list[float]
    optimum: list[float]
    offsets: list[float]  # each start's trace offset, in seconds
    prepared: PreparedZones
    # The policy planning with the daemon's decision interval instead of the simulator's
    # own (its longest probe interval): where that is longer than d, the one modelling
    # difference that moves the safety net (see the module's docstring).
    at_daemon_step: list[float]


def simulated(
    traces: TraceSet,
    zones: list[str],
    job_hours: float,
    fraction: float,
    d: float,
    count: int,
    daemon_step_hours: float,
) -> Simulated:
    """bench.spot's starts for this zone set, and the policy's and the optimum's costs."""
    sizes = lengths(traces, job_hours, (fraction,), d)
    label = zone_set_label(traces, zones)
    prepared = prepare(traces, zones, label, sizes.unit_seconds)
    horizon = math.ceil(max(sizes.deadline_seconds) / sizes.unit_seconds) + 1
    starts = start_rows(prepared.times, horizon, count, 0, label)
    # no checkpoint egress: the daemon's policy is not told a checkpoint's size, nor does
    # the sim cloud charge for moving one (bench.spot's several-zone figures charge $1)
    job = [Job(s, sizes.job, sizes.deadline_seconds[0], sizes.changeover, 0.0) for s in starts]
    costs = [simulate(POLICIES["skyd"], prepared, j).cost for j in job]
    at_daemon = dataclasses.replace(prepared, step_hours=daemon_step_hours)
    daemon_step = [simulate(POLICIES["skyd"], at_daemon, j).cost for j in job]
    optimum = [float(o[0]) for o in cached_optimum(prepared, starts, sizes, 0.0)]
    offsets = [float(prepared.times[s] * prepared.unit_seconds) for s in starts]
    return Simulated(starts, costs, optimum, offsets, prepared, daemon_step)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.spot.daemon_replay", description=__doc__.splitlines()[0]
    )
    p.add_argument("--traces", type=Path, default=SHIPPED, help="a trace directory")
    p.add_argument("--zones", default="us-east-1c", help="comma-separated zone set")
    p.add_argument("--job-hours", type=float, default=12.0)
    p.add_argument("--job-fraction", type=float, default=0.8)
    p.add_argument("--changeover-hours", type=float, default=0.2)
    p.add_argument("--starts", type=int, default=6)
    p.add_argument("--tick-seconds", type=float, default=60.0, help="the daemon's tick")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if not 0 < args.job_fraction <= 1:
        p.error(f"--job-fraction {args.job_fraction}: must be in (0, 1]")
    if args.starts < 1 or args.tick_seconds <= 0 or args.job_hours <= 0:
        p.error("--starts, --tick-seconds and --job-hours must be positive")
    zones = [z for z in args.zones.split(",") if z]
    traces = load_trace_set(args.traces)
    deadline_hours = args.job_hours / args.job_fraction
    sim = simulated(
        traces,
        zones,
        args.job_hours,
        args.job_fraction,
        args.changeover_hours,
        args.starts,
        args.tick_seconds / 3600.0,
    )
    starts, sim_costs, optimum, offsets = sim.starts, sim.costs, sim.optimum, sim.offsets
    rows = []
    with tempfile.TemporaryDirectory(prefix="skyd-daemon-replay-") as tmp:
        subset = zone_subset(args.traces, zones, Path(tmp) / "trace")
        for i, (start, offset) in enumerate(zip(starts, offsets, strict=True)):
            root = Path(tmp) / f"run-{i}"
            root.mkdir()
            outcome = asyncio.run(
                run_daemon(
                    root,
                    subset,
                    offset,
                    float(traces.timestamps[0]) + offset,
                    args.job_hours,
                    deadline_hours,
                    args.changeover_hours,
                    args.tick_seconds,
                )
            )
            outcome.update(
                start_row=start,
                simulated_cost=round(sim_costs[i], 3),
                optimum_cost=round(optimum[i], 3),
                daemon_vs_simulated=round(outcome["cost"] / sim_costs[i], 4),
                simulated_cost_at_daemon_step=round(sim.at_daemon_step[i], 3),
                daemon_vs_simulated_at_daemon_step=round(
                    outcome["cost"] / sim.at_daemon_step[i], 4
                ),
            )
            rows.append(outcome)
            if not args.json:
                print(json.dumps(outcome), file=sys.stderr)
    ratios = [r["daemon_vs_simulated"] for r in rows]
    at_step = [r["daemon_vs_simulated_at_daemon_step"] for r in rows]

    def gap(costs: Iterable[float]) -> float:
        return round(statistics.fmean(costs) / statistics.fmean(optimum) - 1, 4)

    summary = {
        "benchmark": "spot.daemon_replay",
        "zones": zones,
        "job_hours": args.job_hours,
        "job_fraction": args.job_fraction,
        "changeover_hours": args.changeover_hours,
        "tick_seconds": args.tick_seconds,
        "starts": len(rows),
        "succeeded": sum(1 for r in rows if r["state"] == "SUCCEEDED"),
        "missed_deadline": sum(1 for r in rows if r["missed_deadline"]),
        "mean_daemon_cost": round(statistics.fmean(r["cost"] for r in rows), 3),
        "mean_simulated_cost": round(statistics.fmean(sim_costs), 3),
        "mean_optimum_cost": round(statistics.fmean(optimum), 3),
        "daemon_vs_simulated_mean": round(statistics.fmean(ratios), 4),
        "daemon_vs_simulated_range": [min(ratios), max(ratios)],
        # the decision interval each side's policy plans with (its safety margin is what
        # the interval exceeds d by): the simulator's longest probe interval, the tick
        "simulated_step_seconds": round(sim.prepared.step_hours * 3600.0, 1),
        "mean_simulated_cost_at_daemon_step": round(statistics.fmean(sim.at_daemon_step), 3),
        "daemon_vs_simulated_at_daemon_step_mean": round(statistics.fmean(at_step), 4),
        "daemon_vs_simulated_at_daemon_step_range": [min(at_step), max(at_step)],
        "daemon_gap_to_optimum": round(
            statistics.fmean(r["cost"] for r in rows) / statistics.fmean(optimum) - 1, 4
        ),
        "simulated_gap_to_optimum": round(
            statistics.fmean(sim_costs) / statistics.fmean(optimum) - 1, 4
        ),
        "moves": sum(r["moves"] for r in rows),
        "preemptions": sum(r["preemptions"] for r in rows),
        "changeover_seconds_mean": round(
            statistics.fmean(c for r in rows for c in r["changeover_seconds"]), 1
        ),
        "changeover_seconds_max": max(c for r in rows for c in r.pop("changeover_seconds")),
        "planned_changeover_seconds_max": max(
            c for r in rows for c in r["planned_changeover_seconds"]
        ),
        "runs": rows,
    }
    print(json.dumps(summary, indent=None if args.json else 2))
    return 0 if summary["succeeded"] == len(rows) and not summary["missed_deadline"] else 1


if __name__ == "__main__":
    sys.exit(main())
