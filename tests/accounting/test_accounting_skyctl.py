"""`skyctl credits add|set|topup|retire` and `costs` against the real accounting routes."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skyctl.accounting_commands import costs, costs_arguments, credits, credits_arguments
from skyctl.client import ApiError, DaemonClient
from skyd.accounting.reports import user_label
from skyd.clock import VirtualClock
from tests.accounting.accounting_books import START, accountant, add_job, launch, new_store
from tests.accounting.accounting_server import serving_client, skyctl_output


@pytest.fixture
def client(tmp_path: Path) -> Iterator[DaemonClient]:
    store = new_store(tmp_path)
    books = accountant(store, VirtualClock(START))
    launch(store, "i-1", job_id=add_job(store), hourly_micros=2_000_000, at=START - 3600)
    books.accrue(START)
    with serving_client(books, "skyd-acct-") as daemon:
        yield daemon


def _credits(client: DaemonClient, *argv: str) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(
        skyctl_output(client, credits_arguments, credits, "--json", *argv)
    )
    return answer


def test_credits_add_set_topup_retire_and_list(client: DaemonClient) -> None:
    added = _credits(
        client, "add", "aws-2026", "--cloud", "aws", "--amount", "500", "--expires", "2026-12-31"
    )
    assert (added["name"], added["amount"], added["state"]) == ("aws-2026", 500.0, "active")
    assert _credits(client, "topup", "aws-2026", "250.25")["amount"] == 750.25
    changed = _credits(client, "set", "aws-2026", "--expires", "2027-01-31", "--amount", "90")
    assert (changed["amount"], changed["expires_at"]) == (90.0, "2027-01-31T00:00:00+00:00")
    assert _credits(client, "retire", str(added["id"]))["state"] == "retired"
    listed = _credits(client)
    assert [p["name"] for p in listed["pools"]] == ["aws-2026"]
    assert listed["cash"]["spent"] == 2.0


def test_credits_errors_name_the_field(client: DaemonClient) -> None:
    with pytest.raises(ApiError) as info:
        _credits(client, "add", "p", "--cloud", "ibm", "--amount", "5", "--expires", "2027-01-01")
    assert (info.value.status, info.value.field) == (400, "cloud")
    for argv in (("topup", "nope", "5"), ("retire", "nope"), ("set", "nope", "--amount", "1")):
        with pytest.raises(ApiError, match="no credit pool 'nope'") as info:
            _credits(client, *argv)
        assert info.value.status == 404


def _costs(client: DaemonClient, *argv: str) -> str:
    return skyctl_output(client, costs_arguments, costs, *argv)


def test_costs_as_json_csv_and_text(client: DaemonClient) -> None:
    report = json.loads(_costs(client, "--by", "cloud", "--since", "7d", "--json"))
    assert report["rows"][0]["amount"] == 2.0
    rows = list(csv.DictReader(io.StringIO(_costs(client, "--by", "job", "--csv"))))
    assert [(r["name"], r["owner"], r["amount_micros"]) for r in rows] == [
        ("job", user_label(1000), "2000000")
    ]
    assert "aws" in _costs(client, "--by", "cloud")
    with pytest.raises(SystemExit):
        _costs(client, "--json", "--csv")


def _credits_text(client: DaemonClient, *argv: str) -> str:
    return skyctl_output(client, credits_arguments, credits, *argv)


def test_credits_and_costs_are_for_people(client: DaemonClient) -> None:
    added = _credits_text(
        client, "add", "aws-2026", "--cloud", "aws", "--amount", "50000", "--expires", "2027-06-30"
    )
    assert "$50,000.00" in added and "2027-06-30" in added
    listing = _credits_text(client)
    lines = listing.splitlines()
    assert lines[0].split() == [
        *("NAME", "CLOUD", "SCOPE", "STATE", "GRANTED", "SPENT", "LEFT", "BURN"),
        *("RUNS", "OUT", "EXPIRES"),
    ]
    assert max(len(line) for line in lines) <= 100
    assert "MICROS" not in listing.upper() and "e+" not in listing and "e-0" not in listing
    assert "Paid outside any pool: $2.00 so far" in listing
    report = _costs(client, "--by", "cloud", "--since", "30d")
    assert report.startswith("Spend by cloud since 20") and "ago)" in report
    assert "e+09" not in report and "MICROS" not in report.upper()
    assert report.splitlines()[-1] == "Total: $2.00 USD"
    assert "100%" in report
