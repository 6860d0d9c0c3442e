"""Assignment instances for bench.optimizer: a lab's queue over the shipped catalogs.

Two generators on the same request mix (fixed seed):

- `distinct` (default): every job its own class — runtime on a quarter-hour grid from 0.5 to
  48 h, a deadline on a third of them (which rules out spot where preemptions would miss it),
  1 or 2 nodes, 8 owners (projects), 7 priorities, 5 credit pools (two region-scoped). With
  these, 1,000 jobs make ~1,000 classes: nothing merges, the model is as big as the queue.
- `sweep`: runtimes 1/4/24 h, 4 projects, 3 priorities, 3 pools: at most 648 classes, so
  identical jobs merge (the instance the README measured before).

Both bind: per-region GPU quotas too small where it is cheap, credit pools and a project
budget.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

from skyd.catalog import Catalog
from skyd.model import Amount, Candidate, ExclusionReason, OfferFilter
from skyd.optimizer import (
    AssignmentJob,
    AssignmentProblem,
    AssignmentSettings,
    CreditPool,
    MarketSignals,
    PlacementRequest,
    ProjectBudget,
    Quota,
    options_from_decision,
    place,
)

Mode = Literal["distinct", "sweep"]
Explained = Sequence[tuple[Candidate, ExclusionReason | None]]

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
SWEEP_HOURS = (1.0, 4.0, 24.0)
SWEEP_PROJECTS = ("vision", "nlp", "robotics", "theory")
SWEEP_PRIORITIES = (0, 0, 0, 0, 0, 0, 0, 0, 10, -10)
PROJECTS = ("vision", "nlp", "robotics", "theory", "audio", "bio", "climate", "systems")
PRIORITIES = (-10, -5, 0, 0, 0, 0, 5, 10, 15, 20)
# GPU quota is granted in whole 8-GPU machines; a 2-node job of 8 GPUs takes two
QUOTA_BLOCK = 16


def make_problem(
    catalog: Catalog, n_jobs: int, seed: int = 1, mode: Mode = "distinct"
) -> AssignmentProblem:
    rng = random.Random(seed)
    distinct = mode == "distinct"
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
        if distinct:
            hours = rng.randint(2, 192) / 4
            deadline = hours * rng.uniform(1.05, 2.0) if rng.random() < 1 / 3 else None
            nodes = 2 if rng.random() < 0.15 else 1
            project, priority = rng.choice(PROJECTS), rng.choice(PRIORITIES)
        else:
            hours, deadline, nodes = rng.choice(SWEEP_HOURS), None, 1
            project, priority = rng.choice(SWEEP_PROJECTS), rng.choice(SWEEP_PRIORITIES)
        decision = place(
            PlacementRequest(
                alternatives=[explained[key]],
                estimated_hours=hours,
                deadline_hours=deadline,
                num_nodes=nodes,
            ),
            signals,
        )
        jobs.append(
            AssignmentJob(
                job_id=job_id,
                options=options_from_decision(decision),
                project=project,
                priority=priority,
                num_nodes=nodes,
            )
        )
    return AssignmentProblem(
        jobs=jobs,
        quotas=_quotas(catalog, n_jobs),
        pools=_pools(jobs, distinct),
        budgets=_budgets(jobs),
        settings=AssignmentSettings(),
    )


def _quotas(catalog: Catalog, n_jobs: int) -> list[Quota]:
    # GPU quotas per (cloud, region, market): enough in total, too little where it is cheap.
    per_region = QUOTA_BLOCK * max(1, round(n_jobs / 12 / QUOTA_BLOCK))
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
    return quotas


def _pools(jobs: list[AssignmentJob], distinct: bool) -> list[CreditPool]:
    cheapest = sum(min((o.expected_cost_micros for o in j.options), default=0) for j in jobs)
    pools = [
        CreditPool("gcp-march", "gcp", cheapest // 10, expires_in_hours=24 * 100),
        CreditPool("aws-june", "aws", cheapest // 8, expires_in_hours=24 * 200),
        CreditPool("azure-grant", "azure", cheapest // 20, expires_in_hours=24 * 365),
    ]
    if distinct:
        pools += [
            CreditPool(
                "aws-east-grant",
                "aws",
                cheapest // 25,
                expires_in_hours=24 * 30,
                region="us-east-1",
            ),
            CreditPool("gcp-central", "gcp", cheapest // 30, region="us-central1"),
        ]
    return pools


def _budgets(jobs: list[AssignmentJob]) -> list[ProjectBudget]:
    theory = sum(
        min((o.expected_cost_micros for o in j.options), default=0)
        for j in jobs
        if j.project == "theory"
    )
    # Exactly what theory would cost if every job got its cheapest offering: binds as soon as
    # quotas push any of its jobs out of the cheapest regions.
    return [ProjectBudget("theory", theory)]
