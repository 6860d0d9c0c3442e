"""`skyctl projects|budget|limits|budget-override` against the real accounting routes (#18)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skyctl import budget_commands
from skyctl.client import ApiError, DaemonClient
from skyd.clock import VirtualClock
from tests.accounting.accounting_books import START, accountant, add_job, launch, new_store
from tests.accounting.accounting_server import serving_client, skyctl_output


@pytest.fixture
def client(tmp_path: Path) -> Iterator[DaemonClient]:
    store = new_store(tmp_path)
    books = accountant(store, VirtualClock(START))
    books.ensure_default_project()
    job = add_job(store, owner_uid=0, project="default")
    launch(store, "i-1", job_id=job, hourly_micros=2_000_000, at=START - 3600)
    books.accrue(START)
    with serving_client(books, "skyd-bud-") as daemon:
        yield daemon


def projects(client: DaemonClient, *argv: str) -> str:
    return skyctl_output(
        client, budget_commands.projects_arguments, budget_commands.projects, *argv
    )


def as_json(text: str) -> Any:
    return json.loads(text)


def test_projects_add_show_members_and_set(client: DaemonClient) -> None:
    shown = as_json(projects(client, "add", "nlp", "--budget", "10", "--members", "root", "--json"))
    assert shown["monthly_budget"] == 10.0 and shown["members"] == ["root"]
    table = projects(client)
    assert "nlp" in table and "$10.00" in table and "default" in table
    assert "MICROS" not in table and "e+" not in table
    after = as_json(projects(client, "members", "nlp", "--add", "0", "--remove", "root", "--json"))
    assert after["members"] == [] and after["open_to_all"]
    text = projects(client, "set", "nlp", "--budget", "none")
    assert "no budget" in text
    spent = as_json(projects(client, "show", "default", "--json"))
    assert spent["spent_this_month"] == pytest.approx(2.0)
    with pytest.raises(ApiError, match="did you mean 'nlp'") as info:
        projects(client, "show", "nlpp")
    assert info.value.field == "project"


def test_budget_and_limits_in_dollars(client: DaemonClient) -> None:
    empty = skyctl_output(client, budget_commands.budget_arguments, budget_commands.budget)
    assert "no budgets are set" in empty
    text = skyctl_output(
        client, budget_commands.budget_arguments, budget_commands.budget, "set", "--lab", "4"
    )
    assert "the lab" in text and "$4.00" in text and "$2.00" in text and "50 %" in text
    limits = skyctl_output(
        client,
        budget_commands.limits_arguments,
        budget_commands.limits,
        "set",
        "root",
        "--max-gpus",
        "2",
        "--monthly-budget",
        "100",
    )
    assert "root" in limits and "$100.00" in limits
    with pytest.raises(ApiError) as info:
        skyctl_output(
            client,
            budget_commands.limits_arguments,
            budget_commands.limits,
            "set",
            "root",
            "--max-hourly",
            "-3",
        )
    assert (info.value.status, info.value.field) == (400, "max_hourly")


def test_budget_override_names_the_job(client: DaemonClient) -> None:
    text = skyctl_output(client, budget_commands.override_arguments, budget_commands.override, "1")
    assert "job 1 may now start" in text
    with pytest.raises(ApiError) as info:
        skyctl_output(client, budget_commands.override_arguments, budget_commands.override, "99")
    assert info.value.status == 404
