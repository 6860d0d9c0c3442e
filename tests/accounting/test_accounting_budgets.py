"""Budgets and limits: which submits are allowed, held or refused, and which running jobs are
warned, stopped or held."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyd.accounting import Accountant, AccountingSettings, BudgetExceededError, HoldDecision
from skyd.accounting.errors import AccountingInputError
from skyd.clock import VirtualClock
from skyd.errors import PermissionDeniedError
from skyd.scheduler.service import Caller
from skyd.spec import TaskSpec, parse_task
from skyd.store import Store
from tests.accounting.accounting_books import (
    ADMIN,
    START,
    accountant,
    add_job,
    launch,
    new_store,
    run_job,
    set_state,
)

ALICE = Caller(uid=1000, is_admin=False)
BOB = Caller(uid=1001, is_admin=False)
DOLLAR = 1_000_000


def spec(gpus: int = 0, project: str | None = None, hours: str | None = None) -> TaskSpec:
    text = "run: train\n"
    if project:
        text += f"project: {project}\n"
    if hours:
        text += f"estimated_runtime: {hours}\n"
    if gpus:
        text += f"resources:\n  accelerators: A100:{gpus}\n"
    return parse_task(text, source="task.yaml", base_dir=Path("/tmp"))


def lab(
    tmp_path: Path, settings: AccountingSettings | None = None
) -> tuple[Store, VirtualClock, Accountant]:
    """Alice: at most 4 GPUs and $5/h, running 2 GPUs at $3/h in `nlp`.
    `vision` ($10/month, alice only) has spent all of it; `nlp` ($100/month) has room."""
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock, settings=settings)
    books.admin.set_user_limit(ADMIN, "1000", {"max_gpus": 4, "max_hourly": 5})
    books.admin.set_project(ADMIN, "vision", {"monthly_budget": 10, "members": [1000]})
    books.admin.set_project(ADMIN, "nlp", {"monthly_budget": "100", "members": [1000, 1001]})
    spent = add_job(store, owner_uid=1000, project="vision")
    launch(store, "i-vision", job_id=spent, hourly_micros=DOLLAR, at=START - 10 * 3600)
    set_state(store, "i-vision", "TERMINATED", START)
    running = add_job(store, owner_uid=1000, project="nlp")
    run_job(store, running, gpus=2, hourly_micros=3 * DOLLAR, at=START)
    books.accrue(START)
    return store, clock, books


def test_a_binding_budget_or_limit_holds_exactly_the_jobs_it_should(tmp_path: Path) -> None:
    _store, _clock, books = lab(tmp_path)
    allowed = HoldDecision.allow()
    cases: list[tuple[str, TaskSpec, int | None, HoldDecision | str]] = [
        ("2 more GPUs fit the limit of 4", spec(gpus=2), DOLLAR, allowed),
        ("4 more GPUs do not fit now", spec(gpus=4), DOLLAR, "hold"),
        ("$3/h more passes $5/h", spec(), 3 * DOLLAR, "hold"),
        ("$2/h more is exactly the limit", spec(), 2 * DOLLAR, allowed),
        ("unknown price: only the budget counts", spec(project="nlp"), None, allowed),
        ("vision is out of money", spec(project="vision"), DOLLAR // 10, "hold"),
        ("vision, price unknown", spec(project="vision"), None, "hold"),
        ("a free job is not held by money", spec(project="vision"), 0, allowed),
        ("nlp has room for 2 h", spec(project="nlp", hours="2h"), DOLLAR // 2, allowed),
        ("300 h would pass nlp's $100", spec(project="nlp", hours="300h"), DOLLAR // 2, "hold"),
    ]
    for what, task, hourly, expected in cases:
        decision = books.check_submit(task, ALICE, hourly)
        if expected == "hold":
            assert decision.hold and decision.reason == "budget", what
            assert decision.message, what
        else:
            assert decision == expected, what
    held = books.check_submit(spec(project="vision"), ALICE, DOLLAR)
    assert "vision" in held.message and "$10.00" in held.message


def test_a_job_that_can_never_fit_is_refused_whatever_the_policy(tmp_path: Path) -> None:
    _store, _clock, books = lab(tmp_path)
    with pytest.raises(BudgetExceededError, match="limit is 4") as info:
        books.check_submit(spec(gpus=8), ALICE, DOLLAR)
    assert info.value.code == "over_budget"
    with pytest.raises(BudgetExceededError, match=r"\$6.00/h"):
        books.check_submit(spec(), ALICE, 6 * DOLLAR)


def test_refuse_policy_refuses_instead_of_holding(tmp_path: Path) -> None:
    _store, _clock, books = lab(tmp_path, AccountingSettings(over_limit_at_submit="refuse"))
    with pytest.raises(BudgetExceededError, match="vision"):
        books.check_submit(spec(project="vision"), ALICE, DOLLAR)
    assert books.check_submit(spec(gpus=2), ALICE, DOLLAR) == HoldDecision.allow()


def test_only_members_charge_a_project(tmp_path: Path) -> None:
    _store, _clock, books = lab(tmp_path)
    with pytest.raises(PermissionDeniedError, match="not a member of project 'vision'"):
        books.check_submit(spec(project="vision"), BOB, DOLLAR)
    # an admin may charge any project, but its budget still binds
    assert books.check_submit(spec(project="vision"), ADMIN, DOLLAR).hold


def test_unknown_projects_are_refused_with_did_you_mean(tmp_path: Path) -> None:
    _store, _clock, books = lab(tmp_path)
    with pytest.raises(
        AccountingInputError, match="'visoin' does not exist; did you mean 'vision'"
    ):
        books.check_submit(spec(project="visoin"), BOB, DOLLAR)
    with pytest.raises(AccountingInputError, match="'misc' does not exist") as info:
        books.check_submit(spec(project="misc"), BOB, DOLLAR)
    assert info.value.field == "project"
    # a job naming no project charges the default project (open to everyone)
    assert books.resolve_project(None, BOB) == "default"


def test_budgets_are_monthly(tmp_path: Path) -> None:
    _store, clock, books = lab(tmp_path)  # vision spent its $10 in May
    assert books.check_submit(spec(project="vision"), ALICE, DOLLAR).hold
    clock.set(1_780_358_400.0)  # 2026-06-02T00:00:00Z
    assert not books.check_submit(spec(project="vision"), ALICE, DOLLAR).hold


def test_an_admin_override_lets_a_held_job_start(tmp_path: Path) -> None:
    store, _clock, books = lab(tmp_path)
    waiting = add_job(store, owner_uid=1000, project="vision")
    assert books.check_job(waiting, DOLLAR).hold
    with pytest.raises(PermissionDeniedError, match="only admins"):
        books.admin.override_job(ALICE, waiting)
    assert books.check_job(waiting, DOLLAR).hold
    books.admin.override_job(ADMIN, waiting, "deadline on Friday")
    assert books.check_job(waiting, DOLLAR) == HoldDecision.allow()


def test_running_jobs_are_warned_at_80_percent_and_held_or_stopped_at_100(
    tmp_path: Path,
) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock)
    books.admin.set_project(ADMIN, "nlp", {"monthly_budget": 10})
    big = add_job(store, project="nlp")
    small = add_job(store, project="nlp")
    free = add_job(store, project="nlp")
    elsewhere = add_job(store, project="other")
    run_job(store, big, gpus=1, hourly_micros=3 * DOLLAR)
    run_job(store, small, gpus=0, hourly_micros=DOLLAR)
    run_job(store, free, gpus=0, hourly_micros=0)  # a local job: money budgets leave it be
    run_job(store, elsewhere, gpus=0, hourly_micros=50 * DOLLAR)
    books.accrue(START + 1.5 * 3600)  # nlp: $6 of $10
    assert books.running_over_budget() == []
    books.accrue(START + 2 * 3600)  # $8: the warning line
    assert books.running_over_budget() == [(big, "warn"), (small, "warn")]
    books.accrue(START + 2.5 * 3600)  # $10
    assert books.running_over_budget() == [(big, "hold"), (small, "hold")]
    books.admin.override_job(ADMIN, small)
    assert books.running_over_budget() == [(big, "hold")]
    stopping = accountant(store, clock, settings=AccountingSettings(at_budget="stop"))
    assert stopping.running_over_budget() == [(big, "stop")]


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="ledger_period_seconds must divide a day"):
        AccountingSettings(ledger_period_seconds=7000)
    with pytest.raises(ValueError, match="warn_lines"):
        AccountingSettings(warn_lines=[1.5])
    with pytest.raises(ValueError, match="not on loopback"):
        AccountingSettings(budget_hook="http://192.0.2.1/alerts")
    with pytest.raises(ValueError, match="assumed_runtime_hours"):
        AccountingSettings(assumed_runtime_hours=0)
    with pytest.raises(ValueError, match="at_budget"):
        AccountingSettings(at_budget="explode")  # type: ignore[arg-type]


def test_a_batch_of_waiting_jobs_lets_through_only_what_fits_together(tmp_path: Path) -> None:
    store, _clock, books = lab(tmp_path)  # alice: 2 of 4 GPUs held; nlp: $100 left
    two_gpus = spec(gpus=2)
    # first in the batch: an overridden 2-GPU job of alice's, which brings her to 4 of 4
    waiting = [
        add_job(store, owner_uid=1000, spec=two_gpus.model_dump(mode="json")),  # 6 > 4: held
        add_job(store, owner_uid=1000, spec=two_gpus.model_dump(mode="json")),  # 6 > 4: held
        add_job(store, owner_uid=1001, project="nlp", spec=spec(project="nlp", hours="60h")
                .model_dump(mode="json")),  # $60 of $100: fits
        add_job(store, owner_uid=1001, project="nlp", spec=spec(project="nlp", hours="60h")
                .model_dump(mode="json")),  # $60 + $60 > $100: held
        add_job(store, owner_uid=1001, project="nlp", spec=spec(project="nlp", hours="30h")
                .model_dump(mode="json")),  # $60 + $30: fits
    ]  # fmt: skip
    overridden = add_job(store, owner_uid=1000, spec=two_gpus.model_dump(mode="json"))
    books.admin.override_job(ADMIN, overridden)
    decisions = books.check_jobs(
        {
            overridden: DOLLAR // 10,  # runs whatever the limits say, and counts against them
            **{job: DOLLAR for job in waiting},
        }
    )
    held = [job for job, decision in decisions.items() if decision.hold]
    assert held == [waiting[0], waiting[1], waiting[3]]
    assert all(decisions[job].reason == "budget" for job in held)
    # on its own (the overridden job not running yet), the first would have fitted
    assert not books.check_job(waiting[0], DOLLAR).hold
