"""Benchmark: single placement and global CP-SAT assignment over the shipped catalogs.

    python -m bench.optimizer [--jobs 100,1000,5000] [--time-limits 2[,2,10]] [--json out.json]

Single placement: median time of `place()` over the candidates `Catalog.explain()` gives for
typical GPU requests (target <= 20 ms). Global assignment: N pending jobs drawn (fixed seed)
from a mix of GPU/CPU requests, each with its candidates from the full catalogs; per-region GPU
quotas sized so the cheap regions run out, three credit pools with different expiries and a
project budget that bind. Reports solve time, gap to the solver's bound, and cost against the
greedy cheapest-first baseline on the same instance (target: 1,000 jobs within 2 s at <= 1 %).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from skyd.catalog import Catalog
from skyd.model import Amount, Candidate, ExclusionReason, OfferFilter
from skyd.optimizer import (
    AssignmentJob,
    AssignmentPlan,
    AssignmentProblem,
    AssignmentSettings,
    CreditPool,
    MarketSignals,
    PlacementRequest,
    ProjectBudget,
    Quota,
    SolverLimits,
    greedy_assignment,
    options_from_decision,
    place,
    solve_assignment,
)
from skyd.optimizer.single import place_each

Explained = list[tuple[Candidate, ExclusionReason | None]]

# (weight, accelerators, cpus) — what a lab's queue looks like: mostly 1-GPU jobs.
REQUEST_MIX: list[tuple[int, tuple[tuple[str, int], ...], str | None]] = [
    (20, (("A100", 1),), None),
    (10, (("A100", 8),), None),
    (8, (("H100", 8),), None),
    (5, (("H100", 1),), None),
    (15, (("V100", 1),), None),
    (15, (("L4", 1),), None),
    (10, (("T4", 1),), None),
    (7, (("A10G", 1), ("A10", 1)), None),
    (10, (), "8"),
]
HOURS = (1.0, 4.0, 24.0)
PROJECTS = ("vision", "nlp", "robotics", "theory")
PRIORITIES = (0, 0, 0, 0, 0, 0, 0, 0, 10, -10)

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


def make_problem(
    catalog: Catalog, n_jobs: int, seed: int = 1, aggregate: bool = True
) -> AssignmentProblem:
    rng = random.Random(seed)
    explained: dict[tuple[object, ...], Explained] = {}
    weights = [w for w, _, _ in REQUEST_MIX]
    jobs = []
    signals = MarketSignals()
    for job_id in range(n_jobs):
        _, accelerators, cpus = rng.choices(REQUEST_MIX, weights)[0]
        spot = rng.choice((None, False))  # half may use spot, half need on-demand
        key = (accelerators, cpus, spot)
        if key not in explained:
            f = OfferFilter(
                accelerators=accelerators,
                cpus=Amount(float(cpus), or_more=True) if cpus else None,
                spot=spot,
            )
            explained[key] = catalog.explain(f)
        hours = rng.choice(HOURS)
        decision = place(
            PlacementRequest(alternatives=[explained[key]], estimated_hours=hours), signals
        )
        jobs.append(
            AssignmentJob(
                job_id=job_id,
                options=options_from_decision(decision),
                project=rng.choice(PROJECTS),
                priority=rng.choice(PRIORITIES),
            )
        )
    # GPU quotas per (cloud, region, market): enough in total, too little where it is cheap.
    per_region = max(16, n_jobs // 12)
    regions = sorted({(o.cloud, o.region) for o in catalog.offers if o.accelerator_count})
    quotas = [
        Quota(
            f"{cloud}/{region} {'spot ' if spot else ''}GPUs",
            cloud=cloud,
            region=region,
            resource="gpus",
            limit=per_region,
            spot=spot,
        )
        for cloud, region in regions
        for spot in (False, True)
    ]
    quotas += [
        Quota(f"{cloud} vCPUs", cloud=cloud, resource="vcpus", limit=n_jobs * 32)
        for cloud in ("aws", "gcp", "azure", "lambda")
    ]
    cheapest = sum(min((o.expected_cost_micros for o in j.options), default=0) for j in jobs)
    pools = [
        CreditPool("gcp-march", "gcp", cheapest // 10, expires_in_hours=24 * 100),
        CreditPool("aws-june", "aws", cheapest // 8, expires_in_hours=24 * 200),
        CreditPool("azure-grant", "azure", cheapest // 20, expires_in_hours=24 * 365),
    ]
    theory = sum(
        min((o.expected_cost_micros for o in j.options), default=0)
        for j in jobs
        if j.project == "theory"
    )
    # Exactly what theory would cost if every job got its cheapest offering: binds as soon as
    # quotas push any of its jobs out of the cheapest regions.
    budgets = [ProjectBudget("theory", theory)]
    settings = AssignmentSettings(aggregate_identical_jobs=aggregate)
    return AssignmentProblem(
        jobs=jobs, quotas=quotas, pools=pools, budgets=budgets, settings=settings
    )


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


def bench_global(
    catalog: Catalog, n_jobs: int, limits: SolverLimits, aggregate: bool = True
) -> dict[str, Any]:
    problem = make_problem(catalog, n_jobs, aggregate=aggregate)
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
        **binding(plan, problem),
    }


def format_row(n: int, limit: float, r: dict[str, Any]) -> str:
    gap = r["gap"]
    model = r["model"]
    return (
        f"{n:>6}{limit:>6g}{r['status']:>16}{r['seconds_total']:>9.2f}{r['seconds_cpu']:>7.2f}"
        f"{r['seconds_solver']:>9.2f}"
        f"{gap * 100 if isinstance(gap, float) else float('nan'):>7.2f}"
        f"{r['placed']:>8}{r['placed_greedy']:>8}"
        f"{r['effective_cost_ratio_to_greedy']:>11.3f}{r['list_cost_ratio_to_greedy']:>12.3f}"
        f"{model.get('classes', 0):>8}{model.get('variables', 0):>7}{r['full_quotas']:>7}"
        f"{r['nearly_spent_pools']:>10}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="100,1000,5000")
    parser.add_argument(
        "--time-limits", default="2", help="seconds per solve, one value or one per --jobs size"
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument(
        "--no-aggregate", action="store_true", help="one model class per job (no merging)"
    )
    parser.add_argument(
        "--json", type=Path, default=Path(tempfile.gettempdir()) / "skyd-bench-optimizer.json"
    )
    args = parser.parse_args()
    catalog = Catalog.load()
    start = time.perf_counter()
    import ortools.sat.python.cp_model  # noqa: F401  (a daemon imports it once, not per solve)

    import_seconds = time.perf_counter() - start
    single = bench_single(catalog, args.repeats)
    print("single placement (Catalog.explain + place(), as the daemon decides)")
    print(
        f"{'request':<20}{'candidates':>11}{'median ms':>11}{'p90 ms':>9}{'max ms':>9}"
        f"{'per-candidate ms':>18}"
    )
    for name, row in single.items():
        print(
            f"{name:<20}{row['candidates']:>11.0f}{row['median_ms']:>11.2f}{row['p90_ms']:>9.2f}"
            f"{row['max_ms']:>9.2f}{row['per_candidate_median_ms']:>18.2f}"
        )
    sizes = [int(x) for x in args.jobs.split(",")]
    seconds = [float(x) for x in args.time_limits.split(",")]
    seconds += [seconds[-1]] * (len(sizes) - len(seconds))
    results = []
    print(
        f"\nglobal assignment (CP-SAT vs greedy cheapest-first, same instance); "
        f"ortools import {import_seconds:.2f} s, not counted"
    )
    header = (
        f"{'jobs':>6}{'limit':>6}{'status':>16}{'total s':>9}{'cpu s':>7}{'solver s':>9}"
        f"{'gap %':>7}{'placed':>8}{'greedy':>8}{'eff/greedy':>11}{'list/greedy':>12}"
        f"{'classes':>8}{'vars':>7}{'full q':>7}{'dry pools':>10}"
    )
    print(header)
    for n, limit in zip(sizes, seconds, strict=False):
        limits = SolverLimits(time_limit_seconds=limit, num_workers=args.workers)
        result = bench_global(catalog, n, limits, aggregate=not args.no_aggregate)
        result["time_limit"] = limit
        results.append(result)
        print(format_row(n, limit, result))
    args.json.write_text(
        json.dumps(
            {
                "single": single,
                "global": results,
                "ortools_import_seconds": import_seconds,
                "load_average": os.getloadavg(),
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.json} (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
