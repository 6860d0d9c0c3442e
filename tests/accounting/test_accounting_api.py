"""The accounting API over a real Unix socket, with two real uids (root and nobody)."""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyd.clock import VirtualClock
from tests.accounting.accounting_books import START, accountant, add_job, launch, new_store
from tests.accounting.accounting_server import AccountingServer, request, request_as

NOBODY = 65534
DAY = 86_400.0

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user")


@pytest.fixture
def public_dir() -> Iterator[Path]:
    # the other uid must reach the socket: a directory it can traverse
    path = Path(tempfile.mkdtemp(prefix="skyd-acct-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def serve(tmp_path: Path, public_dir: Path, admin_group: str = "skyd-admin") -> AccountingServer:
    store = new_store(tmp_path / "state")
    clock = VirtualClock(START)
    books = accountant(store, clock)
    mine = add_job(store, owner_uid=NOBODY, project="nlp")
    theirs = add_job(store, owner_uid=0, project="vision")
    launch(store, "i-mine", job_id=mine, hourly_micros=1_000_000, at=START - 3600)
    launch(store, "i-theirs", job_id=theirs, hourly_micros=2_000_000, at=START - 3600, cloud="gcp")
    books.accrue(START)
    return AccountingServer(books, public_dir / "skyd.sock", admin_group)


POOL = {"name": "aws-2026", "cloud": "aws", "amount": "1000.50", "expires": "2026-12-31"}


def test_non_admins_cannot_change_pools_budgets_or_limits_and_nothing_changes(
    tmp_path: Path, public_dir: Path
) -> None:
    with serve(tmp_path, public_dir) as server:
        sock = server.socket_path
        assert request(sock, "POST", "/v1/credits", POOL)[0] == 201
        before = request(sock, "GET", "/v1/credits")[1]
        attempts = [
            ("POST", "/v1/credits", {**POOL, "name": "mine"}),
            ("POST", "/v1/credits/aws-2026", {"amount": 5}),
            ("POST", "/v1/credits/aws-2026/topup", {"amount": 5}),
            ("POST", "/v1/credits/aws-2026/retire", None),
            ("POST", "/v1/projects/nlp", {"monthly_budget": 1_000_000}),
            ("POST", "/v1/limits/nobody", {"max_gpus": 64}),
            ("POST", "/v1/jobs/1/budget-override", None),
        ]
        for method, target, body in attempts:
            status, answer = request_as(NOBODY, sock, method, target, body)
            assert status == 403, target
            assert answer["code"] == "permission_denied", target
            assert "nothing was changed" in answer["message"], target
        # everyone may look
        status, seen = request_as(NOBODY, sock, "GET", "/v1/credits")
        assert status == 200
        assert seen["pools"] == before["pools"]
        assert request_as(NOBODY, sock, "GET", "/v1/projects") == (200, {"projects": []})
        assert request_as(NOBODY, sock, "GET", "/v1/limits") == (200, {"limits": []})


def test_members_of_the_admin_group_are_admins(tmp_path: Path, public_dir: Path) -> None:
    # nobody's primary group is nogroup: make that the admin group
    with serve(tmp_path, public_dir, admin_group="nogroup") as server:
        status, pool = request_as(NOBODY, server.socket_path, "POST", "/v1/credits", POOL)
        assert status == 201 and pool["name"] == "aws-2026"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"amount": -5}, "amount", "cannot be negative"),
        ({"amount": "lots"}, "amount", "not an amount"),
        ({"cloud": "ibm"}, "cloud", "unknown cloud 'ibm'"),
        ({"expires": "2020-01-01"}, "expires", "in the past"),
        ({"expires": "next year"}, "expires", "not a date"),
        ({"name": "has space"}, "name", "not a usable name"),
        ({"colour": "red"}, "colour", "unknown field"),
        ({"starts": "2027-06-01"}, "starts", "after it expires"),
    ],
)
def test_bad_pool_input_is_rejected_naming_the_field(
    tmp_path: Path, public_dir: Path, change: dict[str, object], field: str, words: str
) -> None:
    with serve(tmp_path, public_dir) as server:
        status, answer, _ = request(server.socket_path, "POST", "/v1/credits", {**POOL, **change})
        assert status == 400
        assert answer["field"] == field and words in answer["message"]
        assert request(server.socket_path, "GET", "/v1/credits")[1]["pools"] == []


def test_admins_add_top_up_set_and_retire_pools(tmp_path: Path, public_dir: Path) -> None:
    with serve(tmp_path, public_dir) as server:
        sock = server.socket_path
        status, pool, _ = request(sock, "POST", "/v1/credits", POOL)
        assert status == 201
        assert pool["amount"] == 1000.5 and pool["state"] == "active"
        assert pool["expires_at"] == "2026-12-31T00:00:00+00:00"
        assert request(sock, "POST", "/v1/credits", POOL)[0] == 409  # the name is taken
        status, pool, _ = request(sock, "POST", "/v1/credits/aws-2026/topup", {"amount": 499.5})
        assert (status, pool["amount"]) == (200, 1500.0)
        status, answer, _ = request(sock, "POST", "/v1/credits/aws-2026/topup", {"amount": -1})
        assert (status, answer["field"]) == (400, "amount")
        status, pool, _ = request(sock, "POST", f"/v1/credits/{pool['id']}", {"amount": 20})
        assert (status, pool["amount"]) == (200, 20.0)
        status, pool, _ = request(sock, "POST", "/v1/credits/aws-2026/retire")
        assert (status, pool["state"]) == (200, "retired")
        assert request(sock, "POST", "/v1/credits/nope/retire")[0] == 404


def test_projects_and_limits_are_set_by_admins(tmp_path: Path, public_dir: Path) -> None:
    with serve(tmp_path, public_dir) as server:
        sock = server.socket_path
        status, project, _ = request(
            sock, "POST", "/v1/projects/nlp", {"monthly_budget": 250, "members": ["nobody", 0]}
        )
        assert status == 200
        assert project == {"name": "nlp", "monthly_budget": 250.0, "members": ["root", "nobody"]}
        status, answer, _ = request(sock, "POST", "/v1/projects/nlp", {"monthly_budget": -1})
        assert (status, answer["field"]) == (400, "monthly_budget")
        status, answer, _ = request(sock, "POST", "/v1/projects/nlp", {"members": ["no-such"]})
        assert (status, answer["field"]) == (400, "members")
        status, limit, _ = request(sock, "POST", "/v1/limits/nobody", {"max_gpus": 2})
        assert (status, limit["uid"], limit["max_gpus"]) == (200, NOBODY, 2)
        status, answer, _ = request(sock, "POST", "/v1/limits/nobody", {"max_gpus": -2})
        assert (status, answer["field"]) == (400, "max_gpus")
        status, answer, _ = request(sock, "POST", "/v1/jobs/1/budget-override", {"note": "ok"})
        assert (status, answer) == (200, {"job_id": 1, "override": True})
        assert request(sock, "POST", "/v1/jobs/999/budget-override")[0] == 404
        status, answer, _ = request(sock, "POST", "/v1/jobs/x/budget-override")
        assert (status, answer["field"]) == (400, "job_id")


def test_cost_reports_as_json_and_csv_with_others_jobs_in_summary(
    tmp_path: Path, public_dir: Path
) -> None:
    with serve(tmp_path, public_dir) as server:
        sock = server.socket_path
        status, report, _ = request(sock, "GET", "/v1/costs?by=cloud")
        assert status == 200
        assert {r["key"]: r["amount"] for r in report["rows"]} == {"gcp": 2.0, "aws": 1.0}
        assert report["total"] == 3.0
        status, text, kind = request(sock, "GET", "/v1/costs?by=user&format=csv")
        assert status == 200 and kind.startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert {(r["name"], r["amount_micros"]) for r in rows} == {
            ("root", "2000000"),
            ("nobody", "1000000"),
        }
        # nobody sees its own job in full, root's only as a summary line
        status, report = request_as(NOBODY, sock, "GET", "/v1/costs?by=job")
        assert status == 200
        names = {r["name"]: r["amount"] for r in report["rows"]}
        assert names == {"job": 1.0, "jobs of root": 2.0}
        # root (an admin) sees every job
        report = request(sock, "GET", "/v1/costs?by=job")[1]
        assert [r["owner"] for r in report["rows"]] == ["root", "nobody"]
        assert request(sock, "GET", f"/v1/costs?by=user&since={START + 2 * DAY}")[1]["rows"] == []
        assert request(sock, "GET", "/v1/costs?by=user&since=2026-06-01")[1]["rows"] == []
        assert len(request(sock, "GET", "/v1/costs?by=user&since=7d")[1]["rows"]) == 2
        for query, field in (
            ("by=colour", "by"),
            ("since=soon", "since"),
            ("format=xml", "format"),
        ):
            status, answer, _ = request(sock, "GET", f"/v1/costs?{query}")
            assert (status, answer["field"]) == (400, field)
