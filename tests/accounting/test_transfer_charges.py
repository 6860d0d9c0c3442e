"""Data-transfer (egress) charges: the pricing arithmetic, free providers, payers, the key that
keeps a pull charged once, and budgets and reports that count the charge."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyd.accounting.reports import as_csv, costs_report
from skyd.accounting.transfers import TransferCharges, split_bytes, transfer_micros
from skyd.catalog.locate import candidate_dirs
from skyd.clock import VirtualClock
from skyd.optimizer.egress import EgressTable, find_egress_table
from skyd.runner.pulls import CheckpointPull
from skyd.store import Store
from tests.accounting.accounting_books import (
    ADMIN,
    START,
    accountant,
    add_grants,
    add_job,
    launch,
    new_store,
    run_job,
)

GB = 1_000_000_000
DOLLAR = 1_000_000


def shipped_table() -> EgressTable:
    return find_egress_table(candidate_dirs())


def pull(instance_id: str, nbytes: int, key: str = "checkpoint:a:1") -> CheckpointPull:
    return CheckpointPull(Path("/jobs/1/attempt-1"), "sim", instance_id, nbytes, key)


def transfer_rows(store: Store) -> list[tuple[object, ...]]:
    return [
        tuple(r)
        for r in store.conn.execute(
            "SELECT job_id, owner_uid, project, cloud, region, pool_id, bytes, per_gb_micros,"
            " amount_micros, start_ms, end_ms FROM ledger WHERE kind = 'transfer' ORDER BY seq"
        )
    ]


def test_transfer_price_is_bytes_times_the_rate_rounded_to_the_micro() -> None:
    assert transfer_micros(50 * GB, 90_000) == 4_500_000  # 50 GB out of AWS: $4.50
    assert transfer_micros(0, 90_000) == 0
    assert transfer_micros(5, 90_000) == 0  # 0.00045 micro-dollars
    assert transfer_micros(5_555, 90_000) == 0  # 0.49995: below half a micro-dollar
    assert transfer_micros(5_556, 90_000) == 1  # 0.50004: rounds up
    # exact for sizes a float would round: 10 PB + 1 byte at $0.087/GB
    assert transfer_micros(10**16 + 1, 87_000) == 870_000_000_000
    with pytest.raises(ValueError, match="must not be negative"):
        transfer_micros(-1, 90_000)
    assert split_bytes(1000, [(1, 70), (None, 30)]) == [700, 300]
    assert split_bytes(7, [(1, 1), (2, 1), (None, 1)]) == [2, 2, 3]
    assert split_bytes(1000, [(None, 0)]) == [1000]


def test_the_shipped_table_prices_pulls_at_each_clouds_internet_rate(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START + 60)
    meter = TransferCharges(store=store, clock=clock, table=shipped_table())
    job = add_job(store, owner_uid=1000, project="default")
    size = 3 * GB + 123_456_789
    for cloud, region, rate in (
        ("aws", "us-east-1", 90_000),
        ("gcp", "us-central1", 120_000),
        ("azure", "eastus", 87_000),
    ):
        launch(
            store, f"i-{cloud}", job_id=job, hourly_micros=0, at=START, cloud=cloud, region=region
        )
        charged = meter.charge(pull(f"i-{cloud}", size, key=f"checkpoint:{cloud}:1"))
        assert charged == transfer_micros(size, rate)
    at_ms = round((START + 60) * 1000)
    assert transfer_rows(store) == [
        (job, 1000, "default", "aws", "us-east-1", None, size, 90_000, 281_111, at_ms, at_ms),
        (job, 1000, "default", "gcp", "us-central1", None, size, 120_000, 374_815, at_ms, at_ms),
        (job, 1000, "default", "azure", "eastus", None, size, 87_000, 271_741, at_ms, at_ms),
    ]
    assert meter.charged == 3


@pytest.mark.parametrize("cloud", ["local", "sim", "slurm", "kubernetes", "ssh", "r2"])
def test_pulls_from_a_provider_whose_cloud_bills_nothing_post_nothing(
    tmp_path: Path, cloud: str
) -> None:
    store = new_store(tmp_path)
    meter = TransferCharges(store=store, clock=VirtualClock(START), table=shipped_table())
    launch(store, "i-1", job_id=add_job(store), hourly_micros=0, at=START, cloud=cloud)
    assert meter.charge(pull("i-1", 50 * GB)) == 0
    assert transfer_rows(store) == []
    assert store.conn.execute("SELECT COUNT(*) FROM cost_daily").fetchone()[0] == 0


def test_an_unknown_instance_is_not_charged(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    meter = TransferCharges(store=store, clock=VirtualClock(START), table=shipped_table())
    assert meter.charge(pull("i-gone", GB)) == 0
    assert transfer_rows(store) == []


def test_the_same_pull_reported_twice_is_charged_once(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    meter = TransferCharges(store=store, clock=clock, table=shipped_table())
    job = add_job(store)
    launch(store, "i-1", job_id=job, hourly_micros=0, at=START)
    assert meter.charge(pull("i-1", 10 * GB, key="checkpoint:a:v1")) == 900_000
    clock.set(START + 30)
    # a restarted daemon pulls the same checkpoint version again and reports it
    assert meter.charge(pull("i-1", 10 * GB, key="checkpoint:a:v1")) == 0
    assert meter.charge(pull("i-1", 20 * GB, key="checkpoint:a:v2")) == 1_800_000
    assert [r[8] for r in transfer_rows(store)] == [900_000, 1_800_000]
    cost = store.conn.execute("SELECT cost_micros FROM jobs WHERE id = ?", (job,)).fetchone()
    assert cost[0] == 2_700_000


def test_the_instances_pool_pays_first_then_cash_with_the_bytes_split(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock)
    add_grants(books)
    meter = TransferCharges(store=store, clock=clock, table=shipped_table())
    launch(store, "i-1", job_id=add_job(store), hourly_micros=0, at=START)
    # 20 GB at $0.09 = $1.80: the aws pool's $1, then $0.80 cash; gcp's pool never pays aws
    assert meter.charge(pull("i-1", 20 * GB)) == 1_800_000
    pools = dict(store.conn.execute("SELECT name, id FROM credit_pools").fetchall())
    rows = [(r[5], r[6], r[8]) for r in transfer_rows(store)]
    assert rows == [
        (pools["aws-grant"], 20 * GB * 5 // 9, DOLLAR),
        (None, 20 * GB * 4 // 9 + 1, 800_000),
    ]
    # (the rows are ints, as the assertion above shows; the filter narrows their type)
    assert sum(n for _, n, _ in rows if isinstance(n, int)) == 20 * GB
    spent = dict(store.conn.execute("SELECT name, spent_micros FROM credit_pools").fetchall())
    assert spent == {"aws-grant": DOLLAR, "gcp-grant": 0}
    assert books.credits()["cash"]["spent"] == 0.8


def test_budgets_and_reports_count_transfers(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock)
    books.admin.set_project(ADMIN, "nlp", {"monthly_budget": 1, "members": [1000]})
    job = add_job(store, owner_uid=1000, project="nlp")
    run_job(store, job, gpus=0, hourly_micros=10_000, at=START)  # $0.01/h: far from $1
    meter = TransferCharges(store=store, clock=clock, table=shipped_table())
    clock.set(START + 3600)
    books.accrue(clock.now())
    assert books.running_over_budget() == []
    # 12 GB of checkpoints out of AWS: $1.08 — the transfer alone spends the budget
    assert (
        meter.charge(CheckpointPull(Path("/a"), "sim", f"i-job{job}", 12 * GB, "k1")) == 1_080_000
    )
    books.accrue(clock.now())
    assert books.enforcer.standing().spent_by_project["nlp"] == 10_000 + 1_080_000
    assert books.running_over_budget() == [(job, "hold")]
    by_job = costs_report(
        store.conn, by="job", since=None, viewer_uid=1000, viewer_is_admin=False,
        others_jobs_in_full=False,
    )  # fmt: skip
    assert len(by_job) == 1
    row = by_job[0]
    assert (row["key"], row["amount_micros"]) == (job, 1_090_000)
    assert (row["data_transfer_micros"], row["data_transfer_bytes"]) == (1_080_000, 12 * GB)
    assert row["data_transfer"] == 1.08
    by_project = costs_report(
        store.conn, by="project", since=None, viewer_uid=0, viewer_is_admin=True,
        others_jobs_in_full=False,
    )  # fmt: skip
    assert [(r["key"], r["amount_micros"], r["data_transfer_bytes"]) for r in by_project] == [
        ("nlp", 1_090_000, 12 * GB)
    ]
    assert "data_transfer_bytes" in as_csv(by_project).splitlines()[0]
    assert as_csv(by_project).splitlines()[1].endswith(",1.08,1080000,12000000000")
    assert books.job_cost_micros([job]) == {job: 1_090_000}


def test_other_users_jobs_summed_keep_their_transfer_share(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    meter = TransferCharges(store=store, clock=clock, table=shipped_table())
    for n, uid in enumerate((1001, 1001)):
        job = add_job(store, owner_uid=uid)
        launch(store, f"i-{n}", job_id=job, hourly_micros=0, at=START)
        meter.charge(pull(f"i-{n}", GB, key=f"k{n}"))
    rows = costs_report(
        store.conn, by="job", since=None, viewer_uid=1000, viewer_is_admin=False,
        others_jobs_in_full=False,
    )  # fmt: skip
    assert [
        (r["amount_micros"], r["data_transfer_micros"], r["data_transfer_bytes"]) for r in rows
    ] == [(180_000, 180_000, 2 * GB)]


def test_skyctl_costs_shows_data_out_only_when_some_was_charged() -> None:
    from skyctl.money_view import costs_text

    row = {"key": "nlp", "name": "nlp", "amount": 1.09, "amount_micros": 1_090_000}
    plain = costs_text({"by": "project", "rows": [row], "total": 1.09}, START)
    assert "DATA OUT" not in plain
    with_egress = {**row, "data_transfer": 1.08, "data_transfer_bytes": 12 * GB}
    text = costs_text({"by": "project", "rows": [with_egress], "total": 1.09}, START)
    header, line = text.splitlines()[1:3]
    assert header.split() == ["PROJECT", "AMOUNT", "DATA", "OUT", "SHARE"]
    assert line.split() == ["nlp", "$1.09", "$1.08", "/", "12.00", "GB", "100%"]
