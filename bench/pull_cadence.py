"""Benchmark: what checkpoint pulls out of a cloud cost a spot job, in egress and in work a
preemption throws away, under skyd's pull cadence against pulling every save (the fixed
`checkpoint_sync_s` interval skyd used before, and the baseline here).

    python -m bench.pull_cadence [--hours 2000] [--seed 0] [--json]

A job saves its whole checkpoint (S GB) every `save` minutes; the daemon looks every 10 s
and pulls a changed checkpoint (each pull moves S GB at AWS's internet rate, $0.09/GB) when
its cadence allows: the baseline at every look (so every save), skyd's as
`skyd.runner.pull_cadence.pull_interval_s` says after each billed pull (the shipped code,
ceiling 1800 s). Preemptions come as a Poisson process at `rate` an hour; each throws away
the work since the last *pulled* save, paid again at the instance's price. Over `--hours` of
running per case, with the same preemption times for both, it reports the dollars an hour
each spends on egress and on lost work, and skyd's total as a ratio of the baseline's.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections.abc import Sequence
from itertools import product
from typing import Any

from skyd.runner.pull_cadence import PullClock, PullPrice, pull_interval_s

EGRESS_PER_GB = 0.09  # catalogs/egress.csv: AWS to the internet
FLOOR_S = 10.0  # [cloud_ssh] checkpoint_sync_s default
CEILING_S = 1800.0  # [cloud_ssh] checkpoint_sync_max_s default
SIZES_GB = (0.1, 1.0, 5.0, 20.0)
SAVE_MINUTES = (5.0, 15.0, 30.0)
RATES = (0.015, 0.2)  # preemptions an hour: skyd's default (advisor's riskiest bucket), risky
PRICES = (1.0, 10.0)  # the attempt's dollars an hour: one V100 spot, a multi-GPU node


def simulate(
    size_gb: float,
    save_h: float,
    rate: float,
    price: float,
    hours: float,
    seed: int,
    cadence: bool,
    ceiling_s: float = CEILING_S,
) -> tuple[float, float]:
    """(egress $, lost work $) over `hours` of running, the pulls decided as the runner does
    (`PullClock`, in hours here): a look as each save lands (the runner looks every 10 s),
    and one when a save left for a fresher one has waited its longest."""
    rng = random.Random(seed)
    pull_cost = size_gb * EGRESS_PER_GB
    wait_h = 0.0  # the baseline: no wait, every save pulled as it lands
    if cadence:
        price_now = PullPrice(round(pull_cost * 1e6), round(price * 1e6), rate)
        wait_s = pull_interval_s(price_now, FLOOR_S, ceiling_s)
        wait_h = wait_s / 3600.0 if wait_s > FLOOR_S else 0.0
    egress = lost = 0.0
    loss = rng.expovariate(rate)
    anchor = held = 0.0  # the attempt's start; when the save the daemon holds was made
    clock, k = PullClock(), 1  # the attempt's clock; its next save is its k-th
    while True:
        landed = anchor + k * save_h
        stale = math.inf
        if clock.wait_s > 0 and clock.pending:
            stale = clock.pulled_at + clock.wait_s + (clock.save_s or 0.0)
        at = min(landed, stale)
        if min(loss, at) >= hours:
            break
        if loss < at:
            lost += (loss - held) * price  # redone from the held save, on the next instance
            anchor = held = loss  # (its changeover is the same under both rules)
            clock, k = PullClock(save_s=clock.save_s), 1  # the job's pace is kept
            loss += rng.expovariate(rate)
            continue
        if stale < landed:
            pull = clock.worth_pulling(stale + 1e-9, fresh=False)
            newest = anchor + (k - 1) * save_h
        else:
            fresh = clock.seen(str(k), landed) if clock.wait_s > 0 else True
            pull = clock.worth_pulling(landed, fresh)
            newest = landed
            k += 1
        if pull:
            egress += pull_cost
            held = newest
            clock.seen(str(round((newest - anchor) / save_h)), at)
            clock.pulled(at, wait_h)
    return egress, lost


def run(hours: float, seed: int, ceiling_s: float = CEILING_S) -> dict[str, Any]:
    cases = []
    for size, save_min, rate, price in product(SIZES_GB, SAVE_MINUTES, RATES, PRICES):
        save_h = save_min / 60.0
        args = (size, save_h, rate, price, hours, seed)
        base = simulate(*args, cadence=False)
        skyd = simulate(*args, cadence=True, ceiling_s=ceiling_s)
        cases.append(
            {
                "checkpoint_gb": size,
                "save_every_min": save_min,
                "preemptions_per_hour": rate,
                "price_per_hour": price,
                "baseline_egress_per_h": round(base[0] / hours, 4),
                "baseline_lost_work_per_h": round(base[1] / hours, 4),
                "skyd_egress_per_h": round(skyd[0] / hours, 4),
                "skyd_lost_work_per_h": round(skyd[1] / hours, 4),
                "ratio": round(sum(skyd) / sum(base), 4) if sum(base) else 1.0,
            }
        )
    ratios = sorted(c["ratio"] for c in cases)
    return {
        "hours": hours,
        "seed": seed,
        "ceiling_s": ceiling_s,
        "cases": cases,
        "ratio_median": ratios[len(ratios) // 2],
        "ratio_max": ratios[-1],
        "ratio_min": ratios[0],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2000.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--ceiling-s",
        type=float,
        default=CEILING_S,
        help="[cloud_ssh] checkpoint_sync_max_s (default: skyd's, 1800)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.hours <= 0 or args.ceiling_s < FLOOR_S:
        parser.error("--hours must be positive and --ceiling-s at least 10")
    result = run(args.hours, args.seed, args.ceiling_s)
    if args.json:
        print(json.dumps(result))
        return 0
    print("GB  save  rate  $/h   baseline egress+lost $/h   skyd egress+lost $/h   ratio")
    for c in result["cases"]:
        print(
            f"{c['checkpoint_gb']:>4} {c['save_every_min']:>4.0f}m {c['preemptions_per_hour']:>5}"
            f" {c['price_per_hour']:>4}   {c['baseline_egress_per_h']:>8.3f} +"
            f" {c['baseline_lost_work_per_h']:>6.3f}          {c['skyd_egress_per_h']:>7.3f} +"
            f" {c['skyd_lost_work_per_h']:>6.3f}      {c['ratio']:.3f}"
        )
    low, high = result["ratio_min"], result["ratio_max"]
    print(f"ratio median {result['ratio_median']}, range {low}–{high}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
