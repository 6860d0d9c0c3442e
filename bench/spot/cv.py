"""Leave-one-zone-out cross-validation of skyd's policy constants on a trace set.

For every candidate setting of SlackReserve's constants, every zone is replayed on its
own (the same start rows, fractions and d for every candidate, and for `up`). Then:

* in-sample: the setting with the best score over all zones, and its gaps;
* held out: for each zone, the setting with the best score over the *other* zones,
  scored on that zone only; the held-out figure of a fraction is the mean over zones
  of those runs (every zone judged by constants chosen without it).

Score (lower is better): the worst, over job fractions, of skyd's mean gap to the
optimum divided by `up`'s, then the mean gap.

    python -m bench.spot.cv --traces /work/shared/data/spot-traces/aws-v100-2023 \\
        --starts 100 --json
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import json
import multiprocessing
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean

from bench.spot.engine import Job, prepare, simulate
from bench.spot.sweep import cached_optimum, lengths, start_rows, zone_set_label
from skyd.market.traces import load_trace_set
from skyd.policy import POLICIES, SlackReserve
from skyd.policy.state import SpotPolicy

# The constants searched, around the defaults; each tuple is one candidate's overrides.
GRID: dict[str, tuple[float, ...]] = {
    "min_cycle": (30.0, 35.0, 40.0),
    "reserve_power": (0.75, 0.85),
}


def grid_error(grid: dict[str, tuple[float, ...]]) -> str | None:
    """Why a grid cannot be searched (a name SlackReserve does not take), else None."""
    known = [n for n in inspect.signature(SlackReserve).parameters]
    unknown = [n for n in grid if n not in known]
    if unknown:
        return (
            f"--grid: {', '.join(unknown)} is not a constant of SlackReserve; "
            f"use some of: {', '.join(known)}"
        )
    return None


@dataclass(frozen=True, slots=True)
class Task:
    traces: str
    zone: str
    job_hours: float
    fractions: tuple[float, ...]
    changeover: float
    starts: int
    seed: int
    candidates: tuple[tuple[tuple[str, float], ...], ...]


def candidates(grid: dict[str, tuple[float, ...]]) -> tuple[tuple[tuple[str, float], ...], ...]:
    names = sorted(grid)
    return tuple(
        tuple(zip(names, values, strict=True))
        for values in itertools.product(*(grid[n] for n in names))
    )


def zone_gaps(task: Task) -> dict[str, object]:
    """Mean gap per fraction of `up` and of every candidate, on one zone."""
    traces = load_trace_set(task.traces)
    label = zone_set_label(traces, [task.zone])
    sizes = lengths(traces, task.job_hours, task.fractions, task.changeover)
    prepared = prepare(traces, [task.zone], label, sizes.unit_seconds)
    horizon = int(max(sizes.deadline_seconds) / sizes.unit_seconds) + 1
    starts = start_rows(prepared.times, horizon, task.starts, task.seed, label)
    # One zone never moves its checkpoint, so egress cannot change the optimum: pass the
    # sweep's default ($1 a move) so that the sweep's cached optimum is reused.
    optimum = cached_optimum(prepared, starts, sizes, 1.0)

    def gaps(policy: SpotPolicy) -> tuple[list[float], int]:
        out, misses = [], 0
        for fi in range(len(task.fractions)):
            values = []
            for si, start in enumerate(starts):
                job = Job(start, sizes.job, sizes.deadline_seconds[fi], sizes.changeover)
                result = simulate(policy, prepared, job)
                misses += int(result.missed_deadline)
                values.append(result.cost / float(optimum[si, fi]) - 1.0)
            out.append(fmean(values))
        return out, misses

    up, up_misses = gaps(POLICIES["up"])
    per_candidate = []
    for overrides in task.candidates:
        skyd, misses = gaps(SlackReserve(**dict(overrides)))
        per_candidate.append({"gaps": skyd, "misses": misses})
    return {"zone": task.zone, "up": up, "up_misses": up_misses, "candidates": per_candidate}


def score(skyd: Sequence[float], up: Sequence[float]) -> tuple[float, float]:
    worst = max(s / u if u > 0 else 0.0 for s, u in zip(skyd, up, strict=True))
    return worst, fmean(skyd)


def mean_rows(rows: Sequence[Sequence[float]]) -> list[float]:
    return [fmean(column) for column in zip(*rows, strict=True)]


def cross_validate(results: list[dict[str, object]], cands: Sequence[object]) -> dict[str, object]:
    zones = [str(r["zone"]) for r in results]
    up = {str(r["zone"]): list(r["up"]) for r in results}  # type: ignore[call-overload]
    gaps = {
        str(r["zone"]): [list(c["gaps"]) for c in r["candidates"]]  # type: ignore[attr-defined]
        for r in results
    }

    def best_on(members: list[str]) -> int:
        up_mean = mean_rows([up[z] for z in members])
        return min(
            range(len(cands)),
            key=lambda c: score(mean_rows([gaps[z][c] for z in members]), up_mean),
        )

    chosen = best_on(zones)
    in_sample = mean_rows([gaps[z][chosen] for z in zones])
    held: dict[str, int] = {z: best_on([o for o in zones if o != z]) for z in zones}
    held_out = mean_rows([gaps[z][held[z]] for z in zones])
    up_mean = mean_rows([up[z] for z in zones])
    misses = 0
    for r in results:
        for c in r["candidates"]:  # type: ignore[attr-defined]
            misses += int(c["misses"])
    return {
        "chosen": dict(cands[chosen]),  # type: ignore[call-overload]
        "in_sample": in_sample,
        "held_out": held_out,
        "up": up_mean,
        "held_out_choice": {z: dict(cands[c]) for z, c in held.items()},  # type: ignore[call-overload]
        "misses": misses,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.spot.cv", description=__doc__)
    p.add_argument("--traces", required=True)
    p.add_argument("--job-hours", type=float, default=48.0)
    p.add_argument("--job-fraction", default="0.6,0.7,0.8,0.9,0.95")
    p.add_argument("--changeover-hours", type=float, default=0.2)
    p.add_argument("--starts", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--grid", help='JSON {"constant": [values, ...]} (default: the built-in grid)')
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    grid = GRID if args.grid is None else {k: tuple(v) for k, v in json.loads(args.grid).items()}
    error = grid_error(grid)
    if error is not None:
        print(f"error: {error}", file=sys.stderr)
        return 2
    cands = candidates(grid)
    fractions = tuple(float(f) for f in args.job_fraction.split(","))
    zones = load_trace_set(args.traces).zone_names
    common = (args.job_hours, fractions, args.changeover_hours, args.starts, args.seed, cands)
    tasks = [Task(args.traces, z, *common) for z in zones]
    if args.workers > 1:
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            results = pool.map(zone_gaps, tasks, chunksize=1)
    else:
        results = [zone_gaps(t) for t in tasks]
    report = cross_validate(results, cands)
    report["fractions"] = list(fractions)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"chosen on all zones: {report['chosen']}  (misses: {report['misses']})")
    print("fraction   up      skyd in-sample  skyd held-out  (ratio to up)")
    for i, f in enumerate(fractions):
        u = report["up"][i]  # type: ignore[index]
        a = report["in_sample"][i]  # type: ignore[index]
        h = report["held_out"][i]  # type: ignore[index]
        print(
            f"{f:<9g} {100 * u:5.1f}%  {100 * a:5.1f}% ({a / u:.2f})  {100 * h:5.1f}% ({h / u:.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
