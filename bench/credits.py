"""Benchmark: a year of a lab's jobs placed by skyd's global plan vs greedy cheapest-first.

    python -m bench.credits [--weeks 52] [--users 24] [--jobs-per-week 40] [--seed 1] [--json]

A simulated lab (24 users in 3 projects) submits GPU and CPU jobs every week, some allowed on
spot, each with a one-week deadline. Their candidates come from the shipped catalogs, costed by
skyd's single placement (spot at the catalog's spot price with the spot-risk model). Credit
pools on three clouds expire at different times of the year (one scoped to a project); GPU
quotas per cloud bind, so a job that does not fit waits a week and is late.

Both placers see the same jobs, quotas and pools each week and keep their own books:

- **skyd**: the daemon's global assignment (`solve_assignment`: CP-SAT, credit valued below
  cash and soon-expiring credit below later credit, pool scopes, quotas);
- **greedy**: cheapest list price first, by priority (`greedy_assignment`, the optimizer's
  own baseline).

Each placed job is charged by the ledger's rule (pools covering its cloud, region, project and
owner, the soonest-expiring first; the rest in cash). Reported: credit left unused when each
pool expired, cash paid, jobs late. Goal (#18): strictly less credit expires unused than
greedy, with cash no higher.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from skyd.catalog import Catalog
from skyd.model import Amount, Candidate, ExclusionReason, OfferFilter
from skyd.optimizer import (
    AssignmentJob,
    AssignmentPlan,
    AssignmentProblem,
    CreditPool,
    MarketSignals,
    PlacementRequest,
    Quota,
    SolverLimits,
    greedy_assignment,
    options_from_decision,
    place,
    solve_assignment,
)

DAY_HOURS = 24.0
WEEK_HOURS = 7 * DAY_HOURS
PROJECTS = ("vision", "nlp", "robotics")
# (weight, accelerators, cpus): a lab's queue, mostly single-GPU jobs
MIX: list[tuple[int, tuple[tuple[str, int], ...], str | None]] = [
    (25, (("A100", 1),), None),
    (10, (("A100", 8),), None),
    (15, (("V100", 1),), None),
    (15, (("L4", 1),), None),
    (10, (("T4", 1),), None),
    (10, (("H100", 1),), None),
    (15, (), "8"),
]
HOURS = (2.0, 6.0, 12.0, 24.0, 48.0)
Explained = Sequence[tuple[Candidate, ExclusionReason | None]]


@dataclass
class Pool:
    """A credit pool as the ledger sees it: scope, expiry (hours from the start), balance."""

    name: str
    cloud: str
    amount: int
    expires_hour: float
    projects: tuple[str, ...] | None = None
    balance: int = 0
    expired_unused: int | None = None

    def __post_init__(self) -> None:
        self.balance = self.amount


@dataclass
class Books:
    """One placer's state through the year."""

    pools: list[Pool]
    waiting: list[tuple[AssignmentJob, int]] = field(default_factory=list)  # (job, due week)
    cash: int = 0
    credit_used: int = 0
    late: int = 0
    placed: int = 0
    solve_seconds: float = 0.0

    def expire(self, now_hour: float) -> None:
        for pool in self.pools:
            if pool.expired_unused is None and pool.expires_hour <= now_hour:
                pool.expired_unused = pool.balance
                pool.balance = 0

    def charge(self, job: AssignmentJob, cost: int, cloud: str, now_hour: float) -> None:
        """The ledger's rule: covering pools, soonest expiry first; the rest is cash."""
        for pool in sorted(self.pools, key=lambda p: p.expires_hour):
            if cost == 0:
                break
            if pool.cloud != cloud or pool.balance <= 0 or pool.expires_hour <= now_hour:
                continue
            if pool.projects is not None and job.project not in pool.projects:
                continue
            part = min(pool.balance, cost)
            pool.balance -= part
            self.credit_used += part
            cost -= part
        self.cash += cost


def make_week(
    rng: random.Random,
    catalog: Catalog,
    explained: dict[tuple[object, ...], Explained],
    first_id: int,
    count: int,
    users: int,
) -> list[AssignmentJob]:
    signals = MarketSignals()
    weights = [w for w, _, _ in MIX]
    jobs = []
    for job_id in range(first_id, first_id + count):
        _, accelerators, cpus = rng.choices(MIX, weights)[0]
        spot = rng.choice((None, False))  # half may use spot, half need on-demand
        key = (accelerators, cpus, spot)
        if key not in explained:
            explained[key] = catalog.explain(
                OfferFilter(
                    accelerators=accelerators,
                    cpus=Amount(float(cpus), or_more=True) if cpus else None,
                    spot=spot,
                )
            )
        hours = rng.choice(HOURS)
        decision = place(
            PlacementRequest(alternatives=[explained[key]], estimated_hours=hours), signals
        )
        owner = rng.randrange(users)
        jobs.append(
            AssignmentJob(
                job_id=job_id,
                options=options_from_decision(decision),
                project=PROJECTS[owner % len(PROJECTS)],
                priority=rng.choice((0, 0, 0, 10)),
                owner_uid=1000 + owner,
            )
        )
    return jobs


def quotas(gpus_per_cloud: int) -> list[Quota]:
    return [
        Quota(f"{cloud} GPUs", cloud=cloud, resource="gpus", limit=gpus_per_cloud)
        for cloud in ("aws", "gcp", "azure", "lambda")
    ]


def week_problem(books: Books, now_hour: float, gpus_per_cloud: int) -> AssignmentProblem:
    pools = [
        CreditPool(
            pool.name,
            pool.cloud,
            pool.balance,
            expires_in_hours=pool.expires_hour - now_hour,
            projects=pool.projects,
        )
        for pool in books.pools
        if pool.balance > 0 and pool.expires_hour > now_hour
    ]
    return AssignmentProblem(
        jobs=[job for job, _ in books.waiting], quotas=quotas(gpus_per_cloud), pools=pools
    )


def settle_week(books: Books, plan: AssignmentPlan, week: int, now_hour: float) -> None:
    still: list[tuple[AssignmentJob, int]] = []
    for job, due in books.waiting:
        assignment = plan.assignments.get(job.job_id)
        if assignment is None:
            still.append((job, due))
            continue
        books.placed += 1
        if week > due:
            books.late += 1
        books.charge(
            job, assignment.option.expected_cost_micros, assignment.option.offer.cloud, now_hour
        )
    books.waiting = still


def simulate(args: argparse.Namespace) -> dict[str, Any]:
    catalog = Catalog.load()
    rng = random.Random(args.seed)
    explained: dict[tuple[object, ...], Explained] = {}
    weeks = [
        make_week(rng, catalog, explained, w * 10_000, args.jobs_per_week, args.users)
        for w in range(args.weeks)
    ]
    # Credits sized against the year's cheapest-possible spend, expiring at different times.
    cheapest = sum(
        min((o.expected_cost_micros for o in j.options), default=0) for w in weeks for j in w
    )
    year = args.weeks * WEEK_HOURS

    def pools() -> list[Pool]:
        return [
            Pool("aws-q1", "aws", cheapest // 8, year * 0.25),
            Pool("gcp-vision", "gcp", cheapest // 10, year * 0.6, projects=("vision",)),
            Pool("azure-grant", "azure", cheapest // 10, year * 1.0),
        ]

    placers = {"skyd": Books(pools()), "greedy": Books(pools())}
    limits = SolverLimits(time_limit_seconds=args.time_limit)
    # after the last week, no new jobs: both placers run what still waits (late), so both
    # pay for the same work
    drain: list[list[AssignmentJob]] = [[] for _ in range(args.drain_weeks)]
    for week, jobs in enumerate([*weeks, *drain]):
        now_hour = week * WEEK_HOURS
        for name, books in placers.items():
            if not jobs and not books.waiting:
                continue
            books.expire(now_hour)
            books.waiting.extend((job, week) for job in jobs)
            problem = week_problem(books, now_hour, args.gpus_per_cloud)
            start = time.perf_counter()
            if name == "skyd":
                plan = solve_assignment(problem, limits)
            else:
                plan = greedy_assignment(problem)
            books.solve_seconds += time.perf_counter() - start
            settle_week(books, plan, week, now_hour)
    result: dict[str, Any] = {
        "weeks": args.weeks,
        "users": args.users,
        "projects": len(PROJECTS),
        "jobs": sum(len(w) for w in weeks),
        "credit_granted": sum(p.amount for p in pools()) / 1e6,
    }
    for name, books in placers.items():
        books.expire(float("inf"))
        result[name] = {
            "credit_expired_unused": sum(p.expired_unused or 0 for p in books.pools) / 1e6,
            "credit_used": books.credit_used / 1e6,
            "cash_paid": books.cash / 1e6,
            "jobs_late": books.late + len(books.waiting),
            "jobs_never_placed": len(books.waiting),
            "solve_seconds": round(books.solve_seconds, 2),
            "expired_by_pool": {p.name: (p.expired_unused or 0) / 1e6 for p in books.pools},
        }
    s, g = result["skyd"], result["greedy"]
    result["goal_met"] = (
        s["credit_expired_unused"] < g["credit_expired_unused"] and s["cash_paid"] <= g["cash_paid"]
    )
    result["cash_ratio_skyd_over_greedy"] = (
        s["cash_paid"] / g["cash_paid"] if g["cash_paid"] else None
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--users", type=int, default=24)
    parser.add_argument("--jobs-per-week", type=int, default=40)
    parser.add_argument("--gpus-per-cloud", type=int, default=24)
    parser.add_argument("--time-limit", type=float, default=2.0, help="CP-SAT seconds per week")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--drain-weeks", type=int, default=12, help="weeks to run what waits")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = simulate(args)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['jobs']} jobs over {result['weeks']} weeks, {result['users']} users, "
        f"{result['projects']} projects, ${result['credit_granted']:,.2f} of credit granted"
    )
    print(f"{'placer':<8}{'expired unused':>16}{'credit used':>14}{'cash paid':>14}{'late':>6}")
    for name in ("skyd", "greedy"):
        r = result[name]
        print(
            f"{name:<8}{r['credit_expired_unused']:>16,.2f}{r['credit_used']:>14,.2f}"
            f"{r['cash_paid']:>14,.2f}{r['jobs_late']:>6}"
        )
    print(
        f"goal (less credit expires, cash no higher): {'met' if result['goal_met'] else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
