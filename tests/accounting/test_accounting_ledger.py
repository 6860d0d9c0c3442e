"""The ledger on a virtual clock: exact charges, price changes mid-run, pools by expiry,
restarts and crashes between passes."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from skyd.accounting import (
    AccountingSettings,
    ChargedInstance,
    MarketPrices,
    PriceHistory,
    PriceSeries,
    RecordedPrices,
)
from skyd.clock import VirtualClock
from skyd.store import ledger as ledger_store
from skyd.store import market as market_store
from skyd.store.market import Observation
from tests.accounting.accounting_books import (
    ADMIN,
    START,
    accountant,
    add_job,
    exact_micros,
    launch,
    ledger_by_payer,
    new_store,
    pool_spent,
    set_state,
)

DAY = 86_400.0
SPOT_KEY = "aws/us-east-1/us-east-1a/m5.large/spot"


def test_charges_every_second_at_the_recorded_price_whatever_the_ticks(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock)
    job = add_job(store)
    launch(store, "i-1", job_id=job, hourly_micros=1_234_567, at=START)
    rng = random.Random(7)
    t = START
    while t < START + 3 * DAY:
        t += rng.choice([0.001, 0.5, 7.3, 59.999, 60.0, 3600.0, 5000.0])
        books.accrue(t)
    end = t
    expected = exact_micros([(START, end, 1_234_567)])
    assert ledger_store.instance_total(store.conn, "sim", "i-1") == expected
    assert books.job_cost_micros([job]) == {job: expected}
    assert ledger_store.watermark_of(store.conn, "sim", "i-1") == pytest.approx(end)
    # posted per instance-hour, not per tick: about one row per hour (plus UTC midnights)
    rows = store.conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]
    assert 70 <= rows <= 76


def test_accrual_is_idempotent_for_the_same_moment(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock)
    launch(store, "i-1", job_id=add_job(store), hourly_micros=3_600_000, at=START)
    books.accrue(START + 7200.5)
    before = ledger_by_payer(store)
    assert books.accrue(START + 7200.5) == 0
    assert books.accrue(START + 100) == 0  # a clock that steps back charges nothing
    assert ledger_by_payer(store) == before == {None: 7_200_500}


def test_spot_price_changes_mid_run_are_applied_from_the_second_they_happen(
    tmp_path: Path,
) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    history = PriceHistory(
        {
            SPOT_KEY: [
                (START + 1000.25, 500_000),
                (START + 4000.0, 2_000_000),
                (START + 4000.0 + DAY, 100_000),
            ]
        }
    )
    books = accountant(store, clock, prices=history)
    launch(store, "i-1", job_id=add_job(store), hourly_micros=900_000, at=START, spot=True)
    for t in (START + 600, START + 3600, START + 3 * 3600, START + 2 * DAY):
        books.accrue(t)
    expected = exact_micros(
        [
            (START, START + 1000.25, 900_000),  # the launch price until the first change
            (START + 1000.25, START + 4000.0, 500_000),
            (START + 4000.0, START + 4000.0 + DAY, 2_000_000),
            (START + 4000.0 + DAY, START + 2 * DAY, 100_000),
        ]
    )
    assert ledger_store.instance_total(store.conn, "sim", "i-1") == expected
    prices = {
        r[0]
        for r in store.conn.execute("SELECT DISTINCT hourly_price_micros FROM ledger").fetchall()
    }
    assert prices == {900_000, 500_000, 2_000_000, 100_000}


def test_pools_pay_soonest_expiring_first_within_the_cloud_then_cash(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock)
    later = {"name": "aws-later", "cloud": "aws", "amount": "5", "expires": START + 30 * DAY}
    sooner = {"name": "aws-sooner", "cloud": "aws", "amount": "2", "expires": START + 2 * 3600}
    gcp = {"name": "gcp", "cloud": "gcp", "amount": "100", "expires": START + 30 * DAY}
    other_region = {
        "name": "aws-west",
        "cloud": "aws",
        "region": "us-west-2",
        "amount": "100",
        "expires": START + 30 * DAY,
    }
    for body in (later, sooner, gcp, other_region):
        books.admin.add_pool(ADMIN, body)
    # $1/h on aws us-east-1 for 10 hours
    launch(store, "i-1", job_id=add_job(store), hourly_micros=1_000_000, at=START)
    books.accrue(START + 1800)
    assert ledger_by_payer(store) == {"aws-sooner": 500_000}
    books.accrue(START + 10 * 3600)
    # the sooner pool pays its first 2 hours and then expires; the later pool pays its $5;
    # the remaining 3 hours are cash. Nothing from gcp or another region's pool.
    assert ledger_by_payer(store) == {
        "aws-sooner": 2_000_000,
        "aws-later": 5_000_000,
        None: 3_000_000,
    }
    assert pool_spent(store) == {
        "aws-later": 5_000_000,
        "aws-sooner": 2_000_000,
        "gcp": 0,
        "aws-west": 0,
    }
    clock.set(START + 10 * 3600)
    view = {p["name"]: p for p in books.credits()["pools"]}
    assert view["aws-sooner"]["state"] == "expired"
    assert view["aws-later"]["state"] == "used up"
    assert view["gcp"]["balance"] == 100.0


def test_a_pool_starting_mid_run_pays_from_its_start_and_a_retired_pool_stops(
    tmp_path: Path,
) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock)
    books.admin.add_pool(
        ADMIN,
        {
            "name": "grant",
            "cloud": "aws",
            "amount": 100,
            "starts": START + 3600,
            "expires": START + 30 * DAY,
        },
    )
    launch(store, "i-1", job_id=add_job(store), hourly_micros=1_000_000, at=START)
    books.accrue(START + 2 * 3600)
    clock.set(START + 2 * 3600)
    books.admin.retire_pool(ADMIN, "grant")
    books.accrue(START + 4 * 3600)
    assert ledger_by_payer(store) == {None: 3_000_000, "grant": 1_000_000}


def test_stopped_instances_accrue_only_the_stopped_rate_and_ended_ones_stop(
    tmp_path: Path,
) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    settings = AccountingSettings(stopped_hourly_micros={"aws/m5.large": 10_000})
    books = accountant(store, clock, settings=settings)
    launch(store, "i-1", job_id=add_job(store), hourly_micros=1_000_000, at=START)
    books.accrue(START + 1800)
    # the scheduler accrues right after it records a stop or a start
    set_state(store, "i-1", "STOPPED", START + 3600)
    books.accrue(START + 3600)
    books.accrue(START + 2 * 3600)
    set_state(store, "i-1", "RUNNING", START + 3 * 3600)
    books.accrue(START + 3 * 3600)
    set_state(store, "i-1", "STOPPED", START + 4 * 3600)
    books.accrue(START + 4 * 3600)
    set_state(store, "i-1", "TERMINATED", START + 4 * 3600 + 1800)
    books.accrue(START + 6 * 3600)
    books.accrue(START + 9 * 3600)
    # running 0-1 h and 3-4 h, stopped 1-3 h and 4-4.5 h (then terminated), nothing after
    assert ledger_store.instance_total(store.conn, "sim", "i-1") == 2_000_000 + 25_000
    settled = store.conn.execute(
        "SELECT w.settled, p.open_amount FROM accrual_watermarks AS w"
        " JOIN accrual_progress AS p ON p.id = w.id"
    ).fetchone()
    assert tuple(settled) == (1, 0)
    stopped_rows = store.conn.execute(
        "SELECT start_ms, end_ms, amount_micros FROM ledger WHERE stopped = 1"
    ).fetchall()
    assert sum(r[2] for r in stopped_rows) == 25_000
    windows = [(START + 3600, START + 3 * 3600), (START + 4 * 3600, START + 4.5 * 3600)]
    for start_ms, end_ms, _amount in stopped_rows:
        assert any(a * 1000 <= start_ms < end_ms <= b * 1000 for a, b in windows)


def _run(
    tmp_path: Path, schedule: list[float], restart_at: set[int], history: PriceHistory
) -> tuple[dict[str | None, int], int]:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock, prices=history)
    books.admin.add_pool(
        ADMIN, {"name": "p1", "cloud": "aws", "amount": "1.5", "expires": START + DAY}
    )
    books.admin.add_pool(
        ADMIN, {"name": "p2", "cloud": "aws", "amount": 3, "expires": START + 9 * DAY}
    )
    job = add_job(store)
    launch(store, "i-1", job_id=job, hourly_micros=400_000, at=START, spot=True)
    launch(store, "i-2", job_id=job, hourly_micros=250_000, at=START + 77.5)
    for n, t in enumerate(schedule):
        if n in restart_at:
            store.close()  # a daemon restart: new store connection, new accountant
            store = new_store(tmp_path)
            books = accountant(store, clock, prices=history)
        books.accrue(t)
    result = ledger_by_payer(store), books.job_cost_micros([job])[job]
    store.close()
    return result


def test_restarts_between_passes_change_nothing(tmp_path: Path) -> None:
    history = PriceHistory({SPOT_KEY: [(START + 5000, 800_000), (START + 2 * DAY, 50_000)]})
    rng = random.Random(11)
    schedule = sorted(START + rng.uniform(0, 4 * DAY) for _ in range(300))
    schedule.append(START + 4 * DAY)
    steady = _run(tmp_path / "steady", schedule, set(), history)
    restarted = _run(tmp_path / "restarted", schedule, set(range(0, 300, 13)), history)
    assert steady == restarted
    spot = exact_micros(
        [
            (START, START + 5000, 400_000),
            (START + 5000, START + 2 * DAY, 800_000),
            (START + 2 * DAY, START + 4 * DAY, 50_000),
        ]
    )
    on_demand = exact_micros([(START + 77.5, START + 4 * DAY, 250_000)])
    payers, job_cost = steady
    assert job_cost == spot + on_demand == sum(payers.values())
    assert payers["p1"] == 1_500_000 and payers["p2"] == 3_000_000


class CrashingPrices:
    """The recorded price, but the Nth price lookup raises: a crash in the middle of a pass."""

    def __init__(self, crash_on_call: int) -> None:
        self.calls = 0
        self.crash_on_call = crash_on_call

    def price_at(self, instance: ChargedInstance, at: float) -> int:
        self.calls += 1
        if self.calls == self.crash_on_call:
            raise RuntimeError("injected crash")
        return instance.hourly_price_micros

    def changes_between(self, instance: ChargedInstance, start: float, end: float) -> list[float]:
        return []

    def stopped_price_at(self, instance: ChargedInstance, at: float) -> int:
        return 0

    def is_flat(self, instance: ChargedInstance) -> bool:
        return False  # every lookup goes through price_at

    def refresh(self, conn: sqlite3.Connection) -> None:
        return None


def test_a_crash_inside_a_pass_leaves_the_books_as_the_last_pass_left_them(
    tmp_path: Path,
) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    prices = CrashingPrices(crash_on_call=8)
    books = accountant(store, clock, prices=prices)
    books.admin.add_pool(ADMIN, {"name": "p", "cloud": "aws", "amount": 2, "expires": START + DAY})
    jobs = [add_job(store) for _ in range(5)]
    for n, job in enumerate(jobs):
        launch(store, f"i-{n}", job_id=job, hourly_micros=1_000_000, at=START)
    books.accrue(START + 600)  # 5 lookups
    snapshot = (ledger_by_payer(store), pool_spent(store))
    with pytest.raises(RuntimeError, match="injected crash"):
        books.accrue(START + 1200)  # dies on the third instance
    assert (ledger_by_payer(store), pool_spent(store)) == snapshot
    books.accrue(START + 3 * 3600)
    assert sum(ledger_by_payer(store).values()) == 5 * 3 * 1_000_000
    assert pool_spent(store) == {"p": 2_000_000}


def test_the_ledger_is_append_only(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock)
    launch(store, "i-1", job_id=add_job(store), hourly_micros=1_000_000, at=START)
    books.accrue(START + 2 * DAY)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("UPDATE ledger SET amount_micros = 0")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("DELETE FROM ledger")


def test_costs_report_groups_posted_and_open_charges(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock)
    books.admin.add_pool(
        ADMIN, {"name": "gcp1", "cloud": "gcp", "amount": 1, "expires": START + DAY}
    )
    a = add_job(store, owner_uid=1000, project="vision")
    b = add_job(store, owner_uid=1001, project="nlp")
    launch(store, "i-a", job_id=a, hourly_micros=2_000_000, at=START)
    launch(store, "i-b", job_id=b, hourly_micros=1_000_000, at=START, cloud="gcp")
    books.accrue(START + 1.5 * 3600)
    by_project = {
        r["key"]: r["amount_micros"] for r in books.costs(ADMIN, by="project", since=None)
    }
    assert by_project == {"vision": 3_000_000, "nlp": 1_500_000}
    by_pool = {r["name"]: r["amount_micros"] for r in books.costs(ADMIN, by="pool", since=None)}
    assert by_pool == {"cash": 3_500_000, "gcp1": 1_000_000}
    by_cloud = {r["key"]: r["amount_micros"] for r in books.costs(ADMIN, by="cloud", since=None)}
    assert by_cloud == {"aws": 3_000_000, "gcp": 1_500_000}
    assert books.costs(ADMIN, by="user", since=START + 2 * DAY) == []


class GeneralPathPrices(RecordedPrices):
    """Launch prices, but never declared flat: accrual takes its general path."""

    def is_flat(self, instance: ChargedInstance) -> bool:
        return False


def _books_after(tmp_path: Path, prices: PriceSeries | None) -> list[tuple[object, ...]]:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock, prices=prices)
    books.admin.add_pool(
        ADMIN, {"name": "a", "cloud": "aws", "amount": "3.3", "expires": START + DAY}
    )
    books.admin.add_pool(
        ADMIN, {"name": "b", "cloud": "aws", "amount": 7, "expires": START + 3 * DAY}
    )
    job = add_job(store)
    for n in range(6):
        launch(store, f"i-{n}", job_id=job, hourly_micros=150_000 * (n + 1), at=START + 61 * n)
    rng = random.Random(5)
    t = START
    for step in range(400):
        t += rng.choice([1.0, 59.5, 60.0, 600.0, 3599.0])
        if step == 150:
            set_state(store, "i-2", "STOPPED", t)
        if step == 250:
            set_state(store, "i-2", "RUNNING", t)
        if step == 300:
            set_state(store, "i-4", "TERMINATED", t)
        books.accrue(t)
    rows = store.conn.execute(
        "SELECT instance_id, pool_id, start_ms, end_ms, hourly_price_micros, stopped,"
        " amount_micros FROM ledger ORDER BY seq"
    ).fetchall()
    store.close()
    return [tuple(r) for r in rows]


def test_the_shortcut_for_recorded_prices_books_exactly_what_the_general_path_does(
    tmp_path: Path,
) -> None:
    shortcut = _books_after(tmp_path / "recorded", None)
    general = _books_after(tmp_path / "general", GeneralPathPrices())
    assert shortcut == general
    assert {r[1] for r in shortcut} == {1, 2, None}  # both pools ran dry, then cash


def test_spot_prices_recorded_by_the_market_pollers_are_charged(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock, prices=MarketPrices())
    job = add_job(store)
    launch(store, "spot", job_id=job, hourly_micros=300_000, at=START, spot=True)
    launch(store, "ondemand", job_id=job, hourly_micros=1_000_000, at=START)
    scope = "aws/us-east-1/us-east-1a/m5.large"
    with store.transaction() as conn:
        market_store.record(
            conn,
            [
                Observation(scope, START + 600, "test", spot_price_micros=450_000),
                Observation("aws/us-east-1/us-east-1b/m5.large", START, "test", 9_999_999),
            ],
            observed_at=START + 700,
        )
    books.accrue(START + 3600)
    with store.transaction() as conn:  # seen after the first pass, in force later
        market_store.record(
            conn, [Observation(scope, START + 5400, "test", 200_000)], observed_at=START + 5400
        )
    books.accrue(START + 2 * 3600)
    spot = exact_micros(
        [
            (START, START + 600, 300_000),
            (START + 600, START + 5400, 450_000),
            (START + 5400, START + 7200, 200_000),
        ]
    )
    assert ledger_store.instance_total(store.conn, "sim", "spot") == spot
    assert ledger_store.instance_total(store.conn, "sim", "ondemand") == 2_000_000


def test_a_stretch_across_midnight_is_posted_per_day(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    midnight = 1_780_185_600.0  # 2026-05-31T00:00:00Z
    clock = VirtualClock(midnight - 1800)
    settings = AccountingSettings(ledger_period_seconds=86_400)  # one stretch a day at most
    books = accountant(store, clock, settings=settings)
    launch(store, "i-1", job_id=add_job(store), hourly_micros=1_000_003, at=midnight - 1800)
    for minutes in range(1, 7 * 24 * 60, 7):
        books.accrue(midnight - 1800 + minutes * 60)
    end = midnight - 1800 + (7 * 24 * 60 - 6) * 60
    books.accrue(end)
    set_state(store, "i-1", "TERMINATED", end)
    books.accrue(end + 60)
    rows = store.conn.execute("SELECT start_ms, end_ms, amount_micros FROM ledger").fetchall()
    for start_ms, end_ms, _amount in rows:
        assert start_ms // 86_400_000 == (end_ms - 1) // 86_400_000  # inside one UTC day
    per_day = dict(
        store.conn.execute("SELECT day, SUM(amount_micros) FROM cost_daily GROUP BY day").fetchall()
    )
    first_day = int(midnight // DAY) - 1
    assert per_day[first_day] == pytest.approx(
        exact_micros([(midnight - 1800, midnight, 1_000_003)]), abs=1
    )
    assert sum(per_day.values()) == exact_micros([(midnight - 1800, end, 1_000_003)])
    report = books.costs(ADMIN, by="job", since=midnight)
    assert report[0]["amount_micros"] == sum(per_day.values()) - per_day[first_day]


def test_a_jobs_books_are_final_once_every_instance_is_charged_to_its_end(
    tmp_path: Path,
) -> None:
    store = new_store(tmp_path)
    books = accountant(store, VirtualClock(START))
    job = add_job(store)
    assert not ledger_store.job_settled(store.conn, job)  # nothing launched yet
    launch(store, "i-1", job_id=job, hourly_micros=3_600_000, at=START)
    launch(store, "i-2", job_id=job, hourly_micros=3_600_000, at=START)
    books.accrue(START + 10)
    assert not ledger_store.job_settled(store.conn, job)  # running: still charging
    set_state(store, "i-1", "TERMINATED", START + 20)
    set_state(store, "i-2", "TERMINATED", START + 30)
    books.accrue(START + 25)
    assert not ledger_store.job_settled(store.conn, job)  # i-2 ended after this pass's moment
    books.accrue(START + 31)
    assert ledger_store.job_settled(store.conn, job)
    assert books.job_cost_micros([job]) == {job: 50_000}  # 20 s + 30 s at 1,000 µ$ a second
