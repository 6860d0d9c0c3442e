"""Benchmark: single placement and global assignment over the shipped catalogs.

    python -m bench.optimizer [--jobs 100,1000,10000] [--time-limits 2,2,10]
                              [--mode distinct|sweep] [--json]

Single placement: the whole decision as the daemon makes it (Catalog.explain + place()) for
six request shapes including "any instance" (target <= 5 ms); baseline: the per-candidate
path over the same candidates. Global assignment: N pending jobs from
bench.optimizer_problems (default: every job distinct), binding quotas, credit pools and a
budget; solve time, the proven gap to the bound, and cost against the greedy cheapest-first
baseline on the same instance (targets: 1,000 distinct in <= 2 s at <= 1 %; 10,000 distinct
in <= 10 s with its gap). `--json` prints one object: `single_ms_max`,
`global_1000_distinct_s`, `global_1000_distinct_gap`, `global_10000_distinct_s`, ... with
their baselines.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from bench.optimizer_problems import Mode, make_problem
from skyd.catalog import Catalog
from skyd.model import Amount, Candidate, ExclusionReason, OfferFilter
from skyd.optimizer import (
    AssignmentPlan,
    AssignmentProblem,
    JobAssignment,
    MarketSignals,
    PlacementRequest,
    SolverLimits,
    greedy_assignment,
    place,
    solve_assignment,
)
from skyd.optimizer.prepared import PreparedProblem
from skyd.optimizer.single import place_each

SINGLE_SHAPES: list[tuple[str, OfferFilter]] = [
    ("1xA100", OfferFilter(accelerators=(("A100", 1),))),
    ("8xH100", OfferFilter(accelerators=(("H100", 8),))),
    ("1xL4", OfferFilter(accelerators=(("L4", 1),))),
    ("1xT4 spot", OfferFilter(accelerators=(("T4", 1),), spot=True)),
    ("any instance", OfferFilter()),
    ("cpus 8, memory 16+", OfferFilter(cpus=Amount(8.0), memory_gib=Amount(16.0, or_more=True))),
]


def bench_single(catalog: Catalog, repeats: int) -> dict[str, dict[str, float]]:
    """Per request shape: the whole decision as the daemon makes it (the catalog's candidates
    with their reasons, then place()); `place_only` is the optimizer alone, for comparison
    with the per-candidate path (`per_candidate_ms`) on the same candidates."""
    rows: dict[str, dict[str, float]] = {}
    for name, f in SINGLE_SHAPES:
        signals = MarketSignals()
        catalog.explain(f)  # warm: the catalog's columns are built once, on first use
        timings, place_only, per_candidate = [], [], []
        explained: Sequence[tuple[Candidate, ExclusionReason | None]] = ()
        for _ in range(repeats):
            start = time.perf_counter()
            explained = catalog.explain(f)
            request = PlacementRequest(
                alternatives=[explained], estimated_hours=4.0, deadline_hours=12.0, filters=[f]
            )
            middle = time.perf_counter()
            place(request, signals)
            end = time.perf_counter()
            timings.append(end - start)
            place_only.append(end - middle)
        listed = list(explained)
        plain = PlacementRequest(
            alternatives=[listed], estimated_hours=4.0, deadline_hours=12.0, filters=[f]
        )
        for _ in range(max(3, repeats // 10)):
            start = time.perf_counter()
            place_each(plain, MarketSignals())
            per_candidate.append(time.perf_counter() - start)
        rows[name] = {
            "candidates": len(explained),
            "median_ms": statistics.median(timings) * 1e3,
            "p90_ms": sorted(timings)[int(0.9 * len(timings))] * 1e3,
            "max_ms": max(timings) * 1e3,
            "place_only_median_ms": statistics.median(place_only) * 1e3,
            "per_candidate_median_ms": statistics.median(per_candidate) * 1e3,
        }
    return rows


def binding(plan: AssignmentPlan, problem: AssignmentProblem) -> dict[str, int]:
    """How many quotas the plan fills and pools it (nearly) exhausts: proof the instance binds."""
    used = [0] * len(problem.quotas)
    for assignment in plan.assignments.values():
        job_nodes = 1
        for q, quota in enumerate(problem.quotas):
            if quota.applies_to(assignment.option.candidate):
                used[q] += quota.need(assignment.option.offer, job_nodes)
    full_quotas = sum(1 for u, q in zip(used, problem.quotas, strict=True) if u >= q.limit > 0)
    dry_pools = sum(
        1
        for pool in problem.pools
        if pool.balance_micros - plan.credit_micros[pool.pool_id] < pool.balance_micros // 50
    )
    return {"full_quotas": full_quotas, "nearly_spent_pools": dry_pools}


def versus_greedy(
    plan: AssignmentPlan, greedy: AssignmentPlan, problem: AssignmentProblem
) -> dict[str, Any]:
    """What the plan's objective buys against greedy, beyond cost: the effective cost of the
    jobs both place (like for like), and the jobs only one of them places.

    The objective is valued spend (credit below cash) plus, for each job left out, a penalty
    of 2 / lightest priority weight x the job's priority weight x its dearest option's cost.
    A plan that places more jobs therefore has a far lower objective while it spends more in
    total: the extra spend is the cost of the jobs it adds, not dearer placements."""
    prep = PreparedProblem(problem)
    value = {pool.pool_id: prep.pool_weights[i] for i, pool in enumerate(problem.pools)}
    priority = {job.job_id: job.priority for job in problem.jobs}

    def effective(a: JobAssignment) -> float:
        return a.charged_micros - sum((1 - value[pid]) * amount for pid, amount in a.credit_micros)

    both = plan.assignments.keys() & greedy.assignments.keys()
    only_plan = sorted(plan.assignments.keys() - greedy.assignments.keys())
    only_greedy = sorted(greedy.assignments.keys() - plan.assignments.keys())
    weight = {j.job_id: prep.priority_weight(j.priority) for j in problem.jobs}
    return {
        "common_jobs": len(both),
        "common_effective_cost_ratio_to_greedy": sum(effective(plan.assignments[j]) for j in both)
        / max(sum(effective(greedy.assignments[j]) for j in both), 1.0),
        "only_plan_jobs": len(only_plan),
        "only_plan_effective_usd": sum(effective(plan.assignments[j]) for j in only_plan) / 1e6,
        "only_plan_priorities": dict(Counter(priority[j] for j in only_plan)),
        "only_greedy_jobs": len(only_greedy),
        "only_greedy_effective_usd": sum(effective(greedy.assignments[j]) for j in only_greedy)
        / 1e6,
        "only_greedy_priorities": dict(Counter(priority[j] for j in only_greedy)),
        "priority_weighted_placed_ratio_to_greedy": sum(weight[j] for j in plan.assignments)
        / max(sum(weight[j] for j in greedy.assignments), 1e-9),
    }


def bench_global(
    catalog: Catalog, n_jobs: int, limits: SolverLimits, mode: Mode = "distinct"
) -> dict[str, Any]:
    problem = make_problem(catalog, n_jobs, mode=mode)
    start = time.perf_counter()
    greedy = greedy_assignment(problem)
    greedy_seconds = time.perf_counter() - start
    start, cpu_start = time.perf_counter(), time.process_time()
    plan = solve_assignment(problem, limits)
    total_seconds = time.perf_counter() - start
    # CPU time of this process: what the solve costs without the other tenants of the box.
    cpu_seconds = time.process_time() - cpu_start
    unplaced_kinds = Counter(u.blockers[0].kind for u in plan.unplaced.values() if u.blockers)
    project_of = {job.job_id: job.project for job in problem.jobs}
    budget_use = {
        budget.project: round(
            sum(
                a.charged_micros
                for a in plan.assignments.values()
                if project_of[a.job_id] == budget.project
            )
            / max(budget.remaining_micros, 1),
            4,
        )
        for budget in problem.budgets
    }
    return {
        "jobs": n_jobs,
        "mode": mode,
        "status": plan.status,
        "seconds_total": total_seconds,
        "seconds_cpu": cpu_seconds,
        "seconds_solver": plan.solve_seconds,
        "gap": plan.gap,
        "placed": plan.placed,
        "placed_greedy": greedy.placed,
        "effective_cost_ratio_to_greedy": plan.effective_cost_micros
        / max(greedy.effective_cost_micros, 1),
        "list_cost_ratio_to_greedy": plan.expected_cost_micros
        / max(greedy.expected_cost_micros, 1),
        "objective_ratio_to_greedy": plan.objective / max(greedy.objective, 1.0),
        "effective_cost_usd": plan.effective_cost_micros / 1e6,
        "greedy_effective_cost_usd": greedy.effective_cost_micros / 1e6,
        "greedy_seconds": greedy_seconds,
        "model": plan.model_size,
        "unplaced_by_reason": dict(unplaced_kinds),
        "budget_used_fraction": budget_use,
        "versus_greedy": versus_greedy(plan, greedy, problem),
        **binding(plan, problem),
    }


def format_row(n: int, limit: float, r: dict[str, Any]) -> str:
    gap = r["gap"]
    model = r["model"]
    return (
        f"{r['mode']:>9}{n:>6}{limit:>6g}{r['status']:>16}{r['seconds_total']:>9.2f}{r['seconds_cpu']:>7.2f}"
        f"{r['seconds_solver']:>9.2f}"
        f"{gap * 100 if isinstance(gap, float) else float('nan'):>7.2f}"
        f"{r['placed']:>8}{r['placed_greedy']:>8}"
        f"{r['effective_cost_ratio_to_greedy']:>11.3f}{r['list_cost_ratio_to_greedy']:>12.3f}"
        f"{model.get('classes', 0):>8}{model.get('variables', 0):>7}{r['full_quotas']:>7}"
        f"{r['nearly_spent_pools']:>10}"
    )


def summary(single: dict[str, dict[str, float]], results: list[dict[str, Any]]) -> dict[str, Any]:
    """The named figures (README's Measured rows), each beside its same-run baseline."""
    out: dict[str, Any] = {
        # slowest request shape, by its median decision time; baseline: the per-candidate
        # path over the same candidates
        "single_ms_max": max(row["median_ms"] for row in single.values()),
        "single_p90_ms_max": max(row["p90_ms"] for row in single.values()),
        "single_baseline_per_candidate_ms_max": max(
            row["per_candidate_median_ms"] for row in single.values()
        ),
    }
    for r in results:
        name = f"global_{r['jobs']}_{r['mode']}"
        out[f"{name}_s"] = r["seconds_total"]
        out[f"{name}_gap"] = r["gap"]
        out[f"{name}_status"] = r["status"]
        out[f"{name}_classes"] = r["model"].get("classes")
        out[f"{name}_baseline_greedy_s"] = r["greedy_seconds"]
        out[f"{name}_effective_cost_vs_greedy"] = r["effective_cost_ratio_to_greedy"]
        out[f"{name}_objective_vs_greedy"] = r["objective_ratio_to_greedy"]
        # like for like: the jobs both plans place (the rest is jobs only one places)
        out[f"{name}_common_effective_cost_vs_greedy"] = r["versus_greedy"][
            "common_effective_cost_ratio_to_greedy"
        ]
        out[f"{name}_placed_vs_greedy"] = f"{r['placed']} vs {r['placed_greedy']}"
        out[f"{name}_priority_weighted_placed_vs_greedy"] = r["versus_greedy"][
            "priority_weighted_placed_ratio_to_greedy"
        ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="100,1000,10000")
    parser.add_argument(
        "--time-limits",
        default="2,2,10",
        help="seconds per solve, one value or one per --jobs size",
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument(
        "--mode",
        choices=("distinct", "sweep"),
        default="distinct",
        help="distinct: every job its own class; sweep: identical jobs merge (<= 648 classes)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object, no table")
    args = parser.parse_args()
    say = (lambda *_a, **_k: None) if args.json else print
    catalog = Catalog.load()
    start = time.perf_counter()
    import ortools.sat.python.cp_model  # noqa: F401  (a daemon imports it once, not per solve)

    import_seconds = time.perf_counter() - start
    single = bench_single(catalog, args.repeats)
    say("single placement (Catalog.explain + place(), as the daemon decides)")
    say(
        f"{'request':<20}{'candidates':>11}{'median ms':>11}{'p90 ms':>9}{'max ms':>9}"
        f"{'per-candidate ms':>18}"
    )
    for name, row in single.items():
        say(
            f"{name:<20}{row['candidates']:>11.0f}{row['median_ms']:>11.2f}{row['p90_ms']:>9.2f}"
            f"{row['max_ms']:>9.2f}{row['per_candidate_median_ms']:>18.2f}"
        )
    sizes = [int(x) for x in args.jobs.split(",")]
    seconds = [float(x) for x in args.time_limits.split(",")]
    seconds += [seconds[-1]] * (len(sizes) - len(seconds))
    results = []
    say(
        f"\nglobal assignment (vs greedy cheapest-first, same instance); "
        f"ortools import {import_seconds:.2f} s, not counted"
    )
    say(
        f"{'mode':>9}{'jobs':>6}{'limit':>6}{'status':>16}{'total s':>9}{'cpu s':>7}"
        f"{'solver s':>9}{'gap %':>7}{'placed':>8}{'greedy':>8}{'eff/greedy':>11}"
        f"{'list/greedy':>12}{'classes':>8}{'vars':>7}{'full q':>7}{'dry pools':>10}"
    )
    for n, limit in zip(sizes, seconds, strict=False):
        limits = SolverLimits(time_limit_seconds=limit, num_workers=args.workers)
        result = bench_global(catalog, n, limits, mode=args.mode)
        result["time_limit"] = limit
        results.append(result)
        say(format_row(n, limit, result))
    report = {
        "bench": "bench.optimizer",
        **summary(single, results),
        "single": single,
        "global": results,
        "ortools_import_seconds": import_seconds,
        "load_average": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"\nload average {os.getloadavg()[0]:.1f}; --json prints all figures")


if __name__ == "__main__":
    main()
