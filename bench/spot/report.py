"""Writes results.csv, summary.csv and the PNG plot of a sweep."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from statistics import fmean

SummaryKey = tuple[str, float, float]

# The column a sweep with --hindsight-zone adds to every row (with `hindsight_zone_gap`).
HINDSIGHT = "hindsight_zone_cost"


def write_results(rows: Sequence[dict[str, object]], path: Path) -> None:
    if not rows:
        raise ValueError("no results to write")
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _num(value: object) -> float:
    if isinstance(value, int | float | str):
        return float(value)
    raise TypeError(f"not a number: {value!r}")


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return fmean(finite) if finite else float("nan")


def summarize(rows: Sequence[dict[str, object]]) -> list[dict[str, object]]:
    """Means per (policy, job fraction, changeover), then per policy over everything."""
    groups: dict[SummaryKey, list[dict[str, object]]] = defaultdict(list)
    overall: dict[str, list[dict[str, object]]] = defaultdict(list)
    for row in rows:
        key = (
            str(row["policy"]),
            _num(row["job_fraction"]),
            _num(row["changeover_hours"]),
        )
        groups[key].append(row)
        overall[key[0]].append(row)

    def line(
        policy: str, fraction: str, d: str, members: list[dict[str, object]]
    ) -> dict[str, object]:
        def col(name: str) -> list[float]:
            return [_num(m[name]) for m in members]

        out: dict[str, object] = {
            "policy": policy,
            "job_fraction": fraction,
            "changeover_hours": d,
            "runs": len(members),
            "mean_cost": round(_mean(col("cost")), 4),
            "mean_optimal_cost": round(_mean(col("optimal_cost")), 4),
            "mean_normalized_cost": round(_mean(col("normalized_cost")), 5),
            "mean_gap_to_optimum": round(_mean(col("gap_to_optimum")), 5),
            "missed_deadlines": int(sum(col("missed_deadline"))),
            "mean_spot_hours": round(_mean(col("spot_hours")), 3),
            "mean_on_demand_hours": round(_mean(col("on_demand_hours")), 3),
            "mean_changeovers": round(_mean(col("changeovers")), 3),
        }
        if HINDSIGHT in members[0]:  # only with --hindsight-zone: same columns otherwise
            out["mean_hindsight_zone_cost"] = round(_mean(col(HINDSIGHT)), 4)
            out["mean_hindsight_zone_gap"] = round(_mean(col("hindsight_zone_gap")), 5)
        return out

    out = [line(p, str(f), str(d), m) for (p, f, d), m in sorted(groups.items())]
    out += [line(p, "all", "all", m) for p, m in overall.items()]
    return out


def json_summary(rows: Sequence[dict[str, object]]) -> dict[str, object]:
    """Per job fraction: each policy's mean cost ratio (to always on-demand), mean gap to
    the optimum and deadline misses, plus the optimum's own ratio (and the best single
    zone's ratio and gap when the rows carry it); per d when several."""

    def by_fraction(members: Sequence[dict[str, object]]) -> dict[str, object]:
        groups: dict[str, dict[str, list[dict[str, object]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for row in members:
            groups[f"{_num(row['job_fraction']):g}"][str(row["policy"])].append(row)
        out: dict[str, object] = {}
        for fraction, policies in sorted(groups.items(), key=lambda kv: float(kv[0])):
            entry: dict[str, object] = {}
            for policy, runs in policies.items():
                entry[policy] = {
                    "ratio": round(_mean([_num(r["normalized_cost"]) for r in runs]), 5),
                    "gap": round(_mean([_num(r["gap_to_optimum"]) for r in runs]), 5),
                    "misses": int(sum(_num(r["missed_deadline"]) for r in runs)),
                    "runs": len(runs),
                }
            any_runs = next(iter(policies.values()))
            entry["optimum"] = {
                "ratio": round(
                    _mean([_num(r["optimal_cost"]) / _num(r["on_demand_cost"]) for r in any_runs]),
                    5,
                ),
                "gap": 0.0,
                "misses": 0,
                "runs": len(any_runs),
            }
            if HINDSIGHT in any_runs[0]:
                # Every policy's rows carry the same figure for a start: read one policy's.
                entry["hindsight_zone"] = {
                    "ratio": round(
                        _mean([_num(r[HINDSIGHT]) / _num(r["on_demand_cost"]) for r in any_runs]),
                        5,
                    ),
                    "gap": round(_mean([_num(r["hindsight_zone_gap"]) for r in any_runs]), 5),
                    "runs": len(any_runs),
                }
            out[fraction] = entry
        return out

    result: dict[str, object] = {"fractions": by_fraction(rows)}
    changeovers = sorted({_num(r["changeover_hours"]) for r in rows})
    result["changeover_hours"] = changeovers
    if len(changeovers) > 1:
        result["by_changeover"] = {
            f"{d:g}": {
                "fractions": by_fraction([r for r in rows if _num(r["changeover_hours"]) == d])
            }
            for d in changeovers
        }
    return result


def write_summary(summary: Sequence[dict[str, object]], path: Path) -> None:
    write_results(summary, path)


def plot(summary: Sequence[dict[str, object]], path: Path) -> None:
    """Three panels per policy: normalized cost and gap vs job fraction, and misses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_policy: dict[str, dict[float, list[dict[str, object]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    misses: dict[str, int] = {}
    for row in summary:
        policy = str(row["policy"])
        if row["job_fraction"] == "all":
            misses[policy] = int(_num(row["missed_deadlines"]))
            continue
        per_policy[policy][_num(row["job_fraction"])].append(row)

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for policy, by_fraction in per_policy.items():
        fractions = sorted(by_fraction)
        cost = [_mean([_num(r["mean_normalized_cost"]) for r in by_fraction[f]]) for f in fractions]
        gap = [_mean([_num(r["mean_gap_to_optimum"]) for r in by_fraction[f]]) for f in fractions]
        axes[0].plot(fractions, cost, marker="o", label=policy)
        axes[1].plot(fractions, [100 * g for g in gap], marker="o", label=policy)
    axes[0].set_title("cost / always on-demand (mean over traces and d)")
    axes[0].set_xlabel("job fraction (job length / time to deadline)")
    axes[1].set_title("gap to omniscient optimum (%)")
    axes[1].set_xlabel("job fraction")
    names = list(misses)
    counts = [misses[n] for n in names]
    bars = axes[2].bar(names, counts, color="tab:red")
    axes[2].bar_label(bars, labels=[str(c) for c in counts])
    axes[2].set_ylim(0, max([1, *counts]) * 1.2)
    axes[2].set_title("deadline misses (all runs)")
    axes[2].tick_params(axis="x", rotation=30)
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
