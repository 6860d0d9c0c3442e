"""Command line of the spot simulator: `python -m bench.spot --traces DIR --out DIR [...]`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.spot.report import _num, json_summary, plot, summarize, write_results, write_summary
from bench.spot.sweep import SweepConfig, run_sweep
from bench.spot.synthetic import generate
from skyd.errors import SkydError
from skyd.market.traces import load_trace_set
from skyd.policy import POLICIES


def _floats(option: str, low: float, high: float) -> Callable[[str], tuple[float, ...]]:
    def parse(text: str) -> tuple[float, ...]:
        try:
            values = tuple(float(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{option} takes comma-separated numbers, e.g. {option} 0.6,0.8; got {text!r}"
            ) from None
        if not values or any(not low < v <= high for v in values):
            raise argparse.ArgumentTypeError(
                f"{option} values must be in ({low:g}, {high:g}], got {text!r}"
            )
        return values

    return parse


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.spot",
        description="Replay spot traces through skyd's deadline-aware policies and the optimum.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--traces", help="a trace directory (see bench/spot/FORMAT.md)")
    source.add_argument(
        "--synthetic",
        type=int,
        metavar="SEED",
        help="generate a synthetic trace set from this seed (into OUT/synthetic-SEED) and use it",
    )
    p.add_argument("--out", required=True, help="where results.csv, summary.csv, PNG go")
    p.add_argument(
        "--zones",
        type=_names,
        default=None,
        help="run this zone set together (multi-zone); default: every zone on its own",
    )
    p.add_argument("--job-hours", type=float, default=48.0, help="job length (default 48)")
    p.add_argument(
        "--job-fraction",
        type=_floats("--job-fraction", 0.0, 1.0),
        default=(0.6, 0.7, 0.8, 0.9, 0.95),
        help="job length / time to deadline, comma-separated (default 0.6,0.7,0.8,0.9,0.95)",
    )
    p.add_argument(
        "--changeover-hours",
        type=_floats("--changeover-hours", 0.0, 24.0),
        default=(0.05, 0.1, 0.2, 0.4),
        help="changeover delay d in hours, comma-separated (default 0.05,0.1,0.2,0.4)",
    )
    p.add_argument("--starts", type=int, default=300, help="random start points per zone set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--policies",
        type=_names,
        default=tuple(POLICIES),
        help=f"comma-separated, of: {', '.join(POLICIES)} (default all)",
    )
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--checkpoint-gb", type=float, default=50.0)
    p.add_argument("--egress-per-gb", type=float, default=0.02)
    p.add_argument(
        "--hindsight-zone",
        action="store_true",
        help="with several --zones, also report the best single zone in hindsight: per start, "
        "the cheapest of each zone's own optimum (the whole future known, but no zone "
        "changes); ignored with one zone, where it is the optimum",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (per job fraction: ratio, gap, misses per policy) on stdout",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    unknown = [n for n in args.policies if n not in POLICIES]
    if unknown:
        print(
            f"error: --policies: unknown {', '.join(unknown)}; known: {', '.join(POLICIES)}",
            file=sys.stderr,
        )
        return 2
    if args.starts < 1 or args.job_hours <= 0 or args.workers < 1:
        print("error: --starts, --job-hours and --workers must be positive", file=sys.stderr)
        return 2
    out = Path(args.out)
    say = sys.stderr if args.json else sys.stdout
    try:
        if args.synthetic is not None:
            args.traces = str(generate(args.synthetic, out / f"synthetic-{args.synthetic}"))
        traces = load_trace_set(args.traces)
        hindsight_zone = args.hindsight_zone
        if hindsight_zone and (not args.zones or len(args.zones) < 2):
            print(
                "note: --hindsight-zone ignored: with one zone per run the best single zone "
                "in hindsight is the optimum itself; give several --zones",
                file=sys.stderr,
            )
            hindsight_zone = False
        if args.zones:
            traces.select(args.zones)
            zone_sets: tuple[tuple[str, ...], ...] = (tuple(args.zones),)
        else:
            zone_sets = tuple((z,) for z in traces.zone_names)
        config = SweepConfig(
            traces_dir=str(args.traces),
            zone_sets=zone_sets,
            job_hours=args.job_hours,
            job_fractions=tuple(args.job_fraction),
            changeover_hours=tuple(args.changeover_hours),
            starts=args.starts,
            seed=args.seed,
            policies=tuple(args.policies),
            checkpoint_gb=args.checkpoint_gb,
            egress_per_gb=args.egress_per_gb,
            workers=args.workers,
            hindsight_zone=hindsight_zone,
        )
        began = time.perf_counter()
        rows = run_sweep(config)
    except (SkydError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    write_results(rows, out / "results.csv")
    summary = summarize(rows)
    write_summary(summary, out / "summary.csv")
    plot(summary, out / "cost.png")
    elapsed = time.perf_counter() - began
    print(
        f"{len(rows)} runs in {elapsed:.1f} s -> {out}/results.csv, summary.csv, cost.png",
        file=say,
    )
    for row in summary:
        if row["job_fraction"] == "all":
            print(
                f"  {row['policy']:<24} cost/on-demand {row['mean_normalized_cost']:.3f}  "
                f"gap to optimum {100 * _num(row['mean_gap_to_optimum']):5.1f}%  "
                f"misses {row['missed_deadlines']}",
                file=say,
            )
    if args.json:
        print(json.dumps(json_summary(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
