"""Global assignment on crafted markets: quota- and credit-bound cases where greedy is wrong,
budgets, priorities, migration hysteresis, unplaced reasons and determinism."""

from __future__ import annotations

import pytest

from skyd.model import dollars_to_micros
from skyd.optimizer import (
    AssignmentJob,
    AssignmentPlan,
    AssignmentProblem,
    AssignmentSettings,
    CreditPool,
    ProjectBudget,
    Quota,
    SolverLimits,
    greedy_assignment,
    solve_assignment,
)
from tests.optimizer.crafted_market import option

LIMITS = SolverLimits(time_limit_seconds=10.0, gap_limit=0.0)


def regions(plan: AssignmentPlan) -> dict[int, str]:
    return {job_id: a.option.offer.region for job_id, a in plan.assignments.items()}


def test_quota_bound_case_where_greedy_cheapest_first_is_wrong() -> None:
    # Only one GPU in us-east-1. Job 1 is indifferent (us-east-1 $1.00 / us-west-2 $1.10);
    # job 2 has no good alternative (us-east-1 $1.00 / eu-west-1 $5.00).
    jobs = [
        AssignmentJob(1, (option("1.00"), option("1.10", region="us-west-2"))),
        AssignmentJob(2, (option("1.00"), option("5.00", region="eu-west-1"))),
    ]
    quota = Quota("aws/us-east-1 GPUs", cloud="aws", region="us-east-1", resource="gpus", limit=1)
    problem = AssignmentProblem(jobs=jobs, quotas=[quota])
    greedy = greedy_assignment(problem)
    best = solve_assignment(problem, LIMITS)
    assert regions(greedy) == {1: "us-east-1", 2: "eu-west-1"}
    assert regions(best) == {1: "us-west-2", 2: "us-east-1"}
    assert best.status == "OPTIMAL" and best.gap is not None and best.gap < 1e-4
    assert best.expected_cost_micros == dollars_to_micros("2.10")
    assert greedy.expected_cost_micros == dollars_to_micros("6.00")


def test_credit_bound_case_where_greedy_cheapest_first_is_wrong() -> None:
    # $10 of AWS credit, worth half a cash dollar. GCP is a little cheaper in cash for both
    # jobs, so greedy sends both there and the credit lies idle. The credit covers only one
    # job: the optimum moves the job with the smaller GCP discount (job 2) to AWS.
    jobs = [
        AssignmentJob(1, (option("10.00"), option("9.00", cloud="gcp", region="us-central1"))),
        AssignmentJob(2, (option("10.00"), option("9.50", cloud="gcp", region="us-central1"))),
    ]
    pool = CreditPool(
        "aws-grant", cloud="aws", balance_micros=dollars_to_micros("10"), expires_in_hours=720
    )
    problem = AssignmentProblem(jobs=jobs, pools=[pool])
    greedy = greedy_assignment(problem)
    best = solve_assignment(problem, LIMITS)
    assert {a.option.offer.cloud for a in greedy.assignments.values()} == {"gcp"}
    assert greedy.effective_cost_micros == dollars_to_micros("18.50")
    assert best.assignments[1].option.offer.cloud == "gcp"
    assert best.assignments[2].option.offer.cloud == "aws"
    assert best.assignments[2].credit_micros == (("aws-grant", dollars_to_micros("10")),)
    assert best.effective_cost_micros == dollars_to_micros("14.00")
    assert best.cash_micros == dollars_to_micros("9")
    assert best.credit_micros == {"aws-grant": dollars_to_micros("10")}


def test_a_job_larger_than_the_pool_is_split_between_credit_and_cash() -> None:
    pool = CreditPool("aws-grant", cloud="aws", balance_micros=dollars_to_micros("3"))
    problem = AssignmentProblem(jobs=[AssignmentJob(1, (option("10.00"),))], pools=[pool])
    for plan in (solve_assignment(problem, LIMITS), greedy_assignment(problem)):
        assignment = plan.assignments[1]
        assert assignment.credit_micros == (("aws-grant", dollars_to_micros("3")),)
        assert assignment.cash_micros == dollars_to_micros("7")
        assert "pool aws-grant $3.00, cash $7.00" in assignment.placement.reason


def test_sooner_expiring_pool_is_spent_first() -> None:
    pools = [
        CreditPool(
            "late", cloud="aws", balance_micros=dollars_to_micros("50"), expires_in_hours=900
        ),
        CreditPool(
            "soon", cloud="aws", balance_micros=dollars_to_micros("50"), expires_in_hours=90
        ),
    ]
    problem = AssignmentProblem(jobs=[AssignmentJob(1, (option("8.00"),))], pools=pools)
    assert solve_assignment(problem, LIMITS).assignments[1].credit_micros == (
        ("soon", dollars_to_micros("8")),
    )
    assert greedy_assignment(problem).assignments[1].pool_id == "soon"


def test_pool_expiring_before_the_job_ends_cannot_pay_for_it() -> None:
    pool = CreditPool(
        "soon", cloud="aws", balance_micros=dollars_to_micros("50"), expires_in_hours=2
    )
    problem = AssignmentProblem(jobs=[AssignmentJob(1, (option("8.00", hours=4),))], pools=[pool])
    assert solve_assignment(problem, LIMITS).assignments[1].pool_id is None


def test_credit_is_preferred_over_a_slightly_cheaper_cash_offering() -> None:
    # GCP at $9 in cash vs AWS at $10 in credit worth half: credit wins.
    job = AssignmentJob(1, (option("10.00"), option("9.00", cloud="gcp", region="us-central1")))
    pool = CreditPool(
        "aws-grant", cloud="aws", balance_micros=dollars_to_micros("100"), expires_in_hours=720
    )
    plan = solve_assignment(AssignmentProblem(jobs=[job], pools=[pool]), LIMITS)
    assert plan.assignments[1].pool_id == "aws-grant"


def test_project_budget_holds_exactly_the_jobs_it_should() -> None:
    jobs = [AssignmentJob(i, (option("3.00"),), project="nlp") for i in (1, 2, 3)]
    jobs.append(AssignmentJob(4, (option("3.00"),), project="vision"))
    budgets = [ProjectBudget("nlp", remaining_micros=dollars_to_micros("7.00"))]
    plan = solve_assignment(AssignmentProblem(jobs=jobs, budgets=budgets), LIMITS)
    assert sorted(plan.assignments) == [1, 2, 4]
    unplaced = plan.unplaced[3]
    assert unplaced.blockers[0].kind == "budget" and unplaced.blockers[0].name == "nlp"
    assert "budget of project 'nlp' has $1.00 left, needs $3.00" in unplaced.reason


def test_higher_priority_is_placed_first_when_capacity_binds() -> None:
    jobs = [
        AssignmentJob(1, (option("1.00"),), priority=0),
        AssignmentJob(2, (option("2.00"),), priority=10),
    ]
    quota = Quota("aws GPUs", cloud="aws", resource="gpus", limit=1)
    problem = AssignmentProblem(jobs=jobs, quotas=[quota])
    for plan in (solve_assignment(problem, LIMITS), greedy_assignment(problem)):
        assert list(plan.assignments) == [2]
        blocker = plan.unplaced[1].blockers[0]
        assert (blocker.kind, blocker.name) == ("quota", "aws GPUs")
        assert "quota 'aws GPUs' is full (1 of 1 used, needs 1)" in plan.unplaced[1].reason


def test_quota_counts_gpus_times_nodes_and_vcpus() -> None:
    big = option("8.00", count=8, instance_type="p3.16xlarge")
    jobs = [
        AssignmentJob(1, (big,), num_nodes=2),  # 16 GPUs, 16 vCPUs
        AssignmentJob(2, (option("1.00"),)),  # 1 GPU, 8 vCPUs
    ]
    roomy = Quota("aws GPUs", cloud="aws", resource="gpus", limit=17)
    plan = solve_assignment(AssignmentProblem(jobs=jobs, quotas=[roomy]), LIMITS)
    assert sorted(plan.assignments) == [1, 2]
    quota = Quota("aws GPUs", cloud="aws", resource="gpus", limit=16)
    plan = solve_assignment(AssignmentProblem(jobs=jobs, quotas=[quota]), LIMITS)
    # Equal priority: leaving a job out costs in proportion to what it is worth (its cost).
    assert list(plan.assignments) == [1]
    assert "quota 'aws GPUs' is full (16 of 16 used, needs 1)" in plan.unplaced[2].reason
    vcpu_quota = Quota("aws vCPUs", cloud="aws", resource="vcpus", limit=8)
    plan = solve_assignment(AssignmentProblem(jobs=jobs, quotas=[vcpu_quota]), LIMITS)
    assert list(plan.assignments) == [2]


def test_spot_quota_applies_only_to_spot_options() -> None:
    job = AssignmentJob(1, (option("1.00", spot=True), option("3.00")))
    quota = Quota("aws spot GPUs", cloud="aws", resource="gpus", limit=0, spot=True)
    plan = solve_assignment(AssignmentProblem(jobs=[job], quotas=[quota]), LIMITS)
    assert plan.assignments[1].option.candidate.spot is False


def test_job_without_candidates_says_so() -> None:
    plan = solve_assignment(AssignmentProblem(jobs=[AssignmentJob(7, ())]), LIMITS)
    assert plan.unplaced[7].blockers[0].kind == "no_candidate"
    assert plan.unplaced[7].reason == "not placed: no candidate offering for this job"


def test_credit_only_lab_reports_the_exhausted_pool() -> None:
    pool = CreditPool("aws-grant", cloud="aws", balance_micros=dollars_to_micros("5"))
    jobs = [AssignmentJob(1, (option("4.00"),)), AssignmentJob(2, (option("4.00"),))]
    settings = AssignmentSettings(allow_cash=False)
    plan = solve_assignment(AssignmentProblem(jobs=jobs, pools=[pool], settings=settings), LIMITS)
    assert list(plan.assignments) == [1]
    blocker = plan.unplaced[2].blockers[0]
    assert (blocker.kind, blocker.name) == ("credit", "aws-grant")
    gcp_only = AssignmentJob(3, (option("1.00", cloud="gcp", region="us-central1"),))
    plan = solve_assignment(
        AssignmentProblem(jobs=[gcp_only], pools=[pool], settings=settings), LIMITS
    )
    assert "no credit pool covers gcp" in plan.unplaced[3].reason


def running_job(alternative_cost: str, migration_cost: str) -> AssignmentJob:
    current = option("10.00")
    elsewhere = option(alternative_cost, region="us-west-2")
    return AssignmentJob(
        1,
        (current, elsewhere),
        running_on=current.key,
        migration_cost_micros=dollars_to_micros(migration_cost),
    )


def test_running_job_stays_when_saving_does_not_cover_the_restart_cost() -> None:
    plan = solve_assignment(AssignmentProblem(jobs=[running_job("9.50", "1.00")]), LIMITS)
    assert plan.assignments[1].option.offer.region == "us-east-1"
    assert plan.assignments[1].migrate is False


def test_running_job_stays_within_the_hysteresis_margin() -> None:
    # Saving $1.30 > $1.00 restart, but not by the 5 % ($0.50) margin.
    plan = solve_assignment(AssignmentProblem(jobs=[running_job("8.70", "1.00")]), LIMITS)
    assert plan.assignments[1].migrate is False


def test_running_job_moves_when_the_saving_is_clear() -> None:
    plan = solve_assignment(AssignmentProblem(jobs=[running_job("5.00", "1.00")]), LIMITS)
    moved = plan.assignments[1]
    assert moved.option.offer.region == "us-west-2" and moved.migrate is True
    assert moved.charged_micros == dollars_to_micros("6.00")


def test_running_job_holds_its_capacity_against_pending_work() -> None:
    current = option("10.00")
    running = AssignmentJob(1, (current,), running_on=current.key)
    pending = AssignmentJob(2, (option("1.00"),), priority=50)
    quota = Quota("aws GPUs", cloud="aws", resource="gpus", limit=1)
    plan = solve_assignment(AssignmentProblem(jobs=[running, pending], quotas=[quota]), LIMITS)
    assert list(plan.assignments) == [1]


def market_problem(aggregate: bool) -> AssignmentProblem:
    regions_ = ["us-east-1", "us-east-2", "us-west-2", "eu-west-1"]
    jobs = []
    for job_id in range(60):
        base = 1.0 + (job_id % 3)
        options = tuple(
            option(f"{base * (1 + 0.1 * r):.2f}", region=region, count=1 + job_id % 2)
            for r, region in enumerate(regions_)
        )
        jobs.append(AssignmentJob(job_id, options, project=f"p{job_id % 2}", priority=job_id % 4))
    quotas = [
        Quota(f"aws/{region} GPUs", cloud="aws", region=region, resource="gpus", limit=20)
        for region in regions_
    ]
    pools = [
        CreditPool("grant", cloud="aws", balance_micros=dollars_to_micros("40"), region="us-east-2")
    ]
    budgets = [ProjectBudget("p1", dollars_to_micros("60"))]
    settings = AssignmentSettings(aggregate_identical_jobs=aggregate)
    return AssignmentProblem(
        jobs=jobs, quotas=quotas, pools=pools, budgets=budgets, settings=settings
    )


def test_aggregating_identical_jobs_changes_the_model_not_the_optimum() -> None:
    together = solve_assignment(market_problem(aggregate=True), LIMITS)
    apart = solve_assignment(market_problem(aggregate=False), LIMITS)
    assert together.status == apart.status == "OPTIMAL"
    assert together.model_size["classes"] < apart.model_size["classes"] == 60
    assert together.objective == pytest.approx(apart.objective, rel=1e-6)
    assert together.objective <= greedy_assignment(market_problem(True)).objective


def test_same_seed_same_plan() -> None:
    limits = SolverLimits(time_limit_seconds=60.0, random_seed=7, deterministic_time_limit=2.0)
    first = solve_assignment(market_problem(aggregate=False), limits)
    second = solve_assignment(market_problem(aggregate=False), limits)
    assert first.assignments == second.assignments
    assert first.objective == second.objective
    assert first.best_bound == second.best_bound


def test_plan_respects_every_constraint() -> None:
    problem = market_problem(aggregate=True)
    plan = solve_assignment(problem, LIMITS)
    used: dict[str, int] = {}
    for assignment in plan.assignments.values():
        region = assignment.option.offer.region
        used[region] = used.get(region, 0) + assignment.option.offer.accelerator_count
    assert all(count <= 20 for count in used.values())
    assert plan.credit_micros["grant"] <= dollars_to_micros("40")
    spent_p1 = sum(
        a.charged_micros
        for a in plan.assignments.values()
        if problem.jobs[a.job_id].project == "p1"
    )
    assert spent_p1 <= dollars_to_micros("60")
    assert set(plan.assignments) | set(plan.unplaced) == {j.job_id for j in problem.jobs}


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: AssignmentSettings(credit_value_soonest=1.5), "credit_value_soonest"),
        (lambda: AssignmentSettings(credit_value_soonest=0.9, credit_value_latest=0.5), "expiring"),
        (lambda: Quota("q", cloud="aws", resource="gpu", limit=1), "resource 'gpu'"),  # type: ignore[arg-type]
        (lambda: AssignmentJob(1, (), num_nodes=0), "num_nodes"),
        (lambda: AssignmentProblem(jobs=[AssignmentJob(1, ()), AssignmentJob(1, ())]), "twice"),
        (lambda: SolverLimits(num_workers=0), "num_workers"),
    ],
)
def test_bad_inputs_name_the_field(build: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        build()  # type: ignore[operator]


def test_a_search_that_finds_nothing_in_time_still_returns_the_greedy_plan() -> None:
    problem = market_problem(aggregate=False)
    plan = solve_assignment(problem, SolverLimits(deterministic_time_limit=0.0))
    greedy = greedy_assignment(problem)
    assert plan.status == "GREEDY_FALLBACK"
    assert plan.assignments == greedy.assignments
    assert plan.gap is None and plan.best_bound is None


def test_region_scoped_pool_goes_to_the_job_only_it_can_pay() -> None:
    # "east2" (sooner, us-east-2 only) and "aws" (later, any region) hold $10 each. Job 1 runs
    # in us-east-1, job 2 in us-east-2: both are paid fully in credit only if east2 pays job 2.
    pools = [
        CreditPool(
            "east2", "aws", dollars_to_micros("10"), expires_in_hours=100, region="us-east-2"
        ),
        CreditPool("aws", "aws", dollars_to_micros("10"), expires_in_hours=1000),
    ]
    jobs = [
        AssignmentJob(1, (option("10.00", region="us-east-1"),)),
        AssignmentJob(2, (option("10.00", region="us-east-2"),)),
    ]
    plan = solve_assignment(AssignmentProblem(jobs=jobs, pools=pools), LIMITS)
    assert plan.cash_micros == 0
    assert plan.assignments[1].credit_micros == (("aws", dollars_to_micros("10")),)
    assert plan.assignments[2].credit_micros == (("east2", dollars_to_micros("10")),)


def test_options_from_decision_keeps_the_ordered_winner_and_prunes_per_group() -> None:
    from skyd.optimizer import PlacementRequest, options_from_decision, place
    from tests.optimizer.crafted_market import candidate, feasible, offer

    east_a = offer(zone="use1-az1", price="3.00")
    east_b = offer(zone="use1-az2", price="3.10")  # same region and market: pruned
    west = offer(region="us-west-2", zone="usw2-az1", price="3.50")
    gcp = offer(cloud="gcp", region="us-central1", zone="us-central1-a", price="1.00")
    alternatives = [
        feasible(candidate(east_a), candidate(east_b), candidate(west)),
        feasible(candidate(gcp)),
    ]
    ordered = place(PlacementRequest(alternatives=alternatives, ordered=True))
    keys = [o.offer.zone for o in options_from_decision(ordered, per_group=1)]
    assert keys == ["use1-az1", "usw2-az1"]
    any_of = place(PlacementRequest(alternatives=alternatives))
    assert [o.offer.cloud for o in options_from_decision(any_of, per_group=1)] == [
        "gcp",
        "aws",
        "aws",
    ]
    kept = options_from_decision(any_of, per_group=1, max_options=1, keep_key=candidate(west).key)
    assert [o.offer.zone for o in kept] == ["us-central1-a", "usw2-az1"]


def test_extreme_priorities_solve_and_too_wide_a_spread_is_refused() -> None:
    jobs = [
        AssignmentJob(1, (option("1.00"),), priority=-100),
        AssignmentJob(2, (option("1.00"),), priority=100),
    ]
    quota = Quota("aws GPUs", cloud="aws", resource="gpus", limit=1)
    plan = solve_assignment(AssignmentProblem(jobs=jobs, quotas=[quota]), LIMITS)
    assert list(plan.assignments) == [2]
    narrow = AssignmentSettings(priority_doubling=1.0)
    with pytest.raises(ValueError, match="priority_doubling"):
        solve_assignment(AssignmentProblem(jobs=jobs, quotas=[quota], settings=narrow), LIMITS)


def test_optimal_plans_report_a_consistent_bound_and_gap() -> None:
    plan = solve_assignment(market_problem(aggregate=True), LIMITS)
    assert plan.status == "OPTIMAL"
    assert plan.best_bound is not None and plan.gap is not None
    assert plan.best_bound <= plan.objective + 1e-6
    # LIMITS asks for a proven optimum; what remains is the objective's rounding (1e-6 of the
    # dearest option per job), which the reported bound allows for.
    assert plan.gap <= 1e-4


def test_running_job_moves_to_make_room_when_the_queue_gains_more() -> None:
    # One GPU in us-east-1, held by a running job that could move to us-west-2 for $0.20 more
    # plus $0.50 restart; a pending job can only run in us-east-1. Moving pays off overall.
    current = option("10.00")
    running = AssignmentJob(
        1,
        (current, option("10.20", region="us-west-2")),
        running_on=current.key,
        migration_cost_micros=dollars_to_micros("0.50"),
    )
    pending = AssignmentJob(2, (option("4.00"),))
    quota = Quota("aws/us-east-1 GPUs", cloud="aws", region="us-east-1", resource="gpus", limit=1)
    plan = solve_assignment(AssignmentProblem(jobs=[running, pending], quotas=[quota]), LIMITS)
    assert plan.assignments[1].migrate is True
    assert plan.assignments[1].option.offer.region == "us-west-2"
    assert plan.assignments[1].charged_micros == dollars_to_micros("10.70")
    assert plan.assignments[2].option.offer.region == "us-east-1"


def test_greedy_hint_and_presolve_reach_the_same_optimum() -> None:
    plain = solve_assignment(market_problem(aggregate=True), LIMITS)
    hinted = solve_assignment(
        market_problem(aggregate=True),
        SolverLimits(time_limit_seconds=10.0, gap_limit=0.0, hint_greedy=True, presolve=True),
    )
    assert hinted.status == plain.status == "OPTIMAL"
    assert hinted.objective == pytest.approx(plain.objective, rel=1e-9)


def test_a_scoped_pool_is_planned_only_for_jobs_it_may_pay_for() -> None:
    from skyd.optimizer import AssignmentJob, AssignmentProblem, CreditPool, solve_assignment

    same = (option("10"),)
    jobs = [
        AssignmentJob(1, same, project="nlp", owner_uid=1000),
        AssignmentJob(2, same, project="vision", owner_uid=1000),
        AssignmentJob(3, same, project="vision", owner_uid=1001),
    ]
    pools = [
        CreditPool("nlp-only", "aws", dollars_to_micros("100"), projects=("nlp",)),
        CreditPool("bob-only", "aws", dollars_to_micros("100"), users=(1001,)),
    ]
    plan = solve_assignment(AssignmentProblem(jobs=jobs, pools=pools))
    payers = {job: a.pool_id for job, a in plan.assignments.items()}
    assert payers == {1: "nlp-only", 2: None, 3: "bob-only"}
