"""Test helpers for accounting: a store with jobs and instances recorded the way the scheduler
records them (through skyd.store), and the exact expected charge of a price series."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from skyd.accounting import Accountant, AccountingSettings, PriceSeries
from skyd.clock import VirtualClock
from skyd.events import EventBus
from skyd.model import Instance, InstanceState, JobState
from skyd.scheduler.service import Caller
from skyd.store import Store, open_store
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store

START = 1_780_000_000.0  # 2026-05-28T20:26:40Z
ADMIN = Caller(uid=0, is_admin=True)
HOUR_MS = 3_600_000


def new_store(path: Path) -> Store:
    return open_store(path)


def accountant(
    store: Store,
    clock: VirtualClock,
    *,
    prices: PriceSeries | None = None,
    settings: AccountingSettings | None = None,
) -> Accountant:
    return Accountant(
        store=store,
        clock=clock,
        bus=EventBus(),
        settings=settings or AccountingSettings(),
        prices=prices,
    )


def add_job(
    store: Store,
    *,
    owner_uid: int = 1000,
    project: str | None = None,
    now: float = START,
    spec: dict[str, object] | None = None,
) -> int:
    job, _event = job_store.insert_job(
        store,
        name="job",
        owner_uid=owner_uid,
        owner_name=f"u{owner_uid}",
        project=project,
        priority=0,
        spec_json=json.dumps(spec or {"run": "true"}),
        base_dir="/tmp",
        deadline=None,
        now=now,
    )
    return job.id


def launch(
    store: Store,
    instance_id: str,
    *,
    job_id: int | None,
    hourly_micros: int,
    at: float,
    cloud: str = "aws",
    region: str = "us-east-1",
    spot: bool = False,
    data: dict[str, object] | None = None,
) -> None:
    with store.transaction() as conn:
        instance_store.insert_instance(
            conn,
            Instance(
                instance_id=instance_id,
                provider="sim",
                cloud=cloud,
                region=region,
                zone=f"{region}a",
                instance_type="m5.large",
                spot=spot,
                state=InstanceState.RUNNING,
            ),
            job_id=job_id,
            attempt=1,
            client_token=f"token-{instance_id}",
            hourly_price_micros=hourly_micros,
            now=at,
            data=data,
        )


def add_grants(books: Accountant) -> None:
    """$1 of AWS credit and $100 of GCP credit, for a day: which cloud's pool pays shows."""
    for name, cloud, amount in (("aws-grant", "aws", "1"), ("gcp-grant", "gcp", "100")):
        books.admin.add_pool(
            ADMIN, {"name": name, "cloud": cloud, "amount": amount, "expires": START + 86_400}
        )


def set_state(store: Store, instance_id: str, state: str, at: float) -> None:
    with store.transaction() as conn:
        instance_store.set_instance_state(conn, "sim", instance_id, state, now=at)


def exact_micros(pieces: Sequence[tuple[float, float, int]]) -> int:
    """floor(Σ price × ms / 1 h) over (start s, end s, hourly micros) pieces: the exact charge."""
    numerator = sum(
        price * (round(end * 1000) - round(start * 1000)) for start, end, price in pieces
    )
    return numerator // HOUR_MS


def pool_spent(store: Store) -> dict[str, int]:
    rows = store.conn.execute("SELECT name, spent_micros FROM credit_pools").fetchall()
    return {r[0]: r[1] for r in rows}


def ledger_by_payer(store: Store) -> dict[str | None, int]:
    """Posted and open charges per payer name (None = cash)."""
    rows = store.conn.execute(
        "SELECT p.name, SUM(l.amount_micros) FROM ledger AS l"
        " LEFT JOIN credit_pools AS p ON p.id = l.pool_id GROUP BY p.name"
    ).fetchall()
    totals: dict[str | None, int] = {r[0]: r[1] for r in rows}
    for name, amount in store.conn.execute(
        "SELECT c.name, SUM(p.open_amount) FROM accrual_watermarks AS w"
        " JOIN accrual_progress AS p ON p.id = w.id"
        " LEFT JOIN credit_pools AS c ON c.id = w.open_pool_id GROUP BY c.name"
    ).fetchall():
        totals[name] = totals.get(name, 0) + amount
    return {k: v for k, v in totals.items() if v}


def run_job(
    store: Store,
    job_id: int,
    *,
    gpus: int,
    hourly_micros: int,
    at: float = START,
    cloud: str = "aws",
) -> None:
    """Move a job to RUNNING the way the scheduler does, holding `gpus` on one instance."""
    placement = json.dumps({"cloud": cloud, "accelerator_count": gpus, "spot": False})
    job_store.transition(
        store, job_id, JobState.PROVISIONING, now=at, reason="placed", placement_json=placement
    )
    launch(store, f"i-job{job_id}", job_id=job_id, hourly_micros=hourly_micros, at=at, cloud=cloud)
    job_store.transition(store, job_id, JobState.SETTING_UP, now=at, reason="launched")
    job_store.transition(store, job_id, JobState.RUNNING, now=at, reason="set up")
