"""A real process that accrues in a tight loop, for the kill -9 test (run as a script).

`python accrual_child.py STATE_DIR` charges the books in STATE_DIR at moments START + n × STEP
for n = 1, 2, … until killed; moments already charged are no-ops, so a restarted child simply
continues. `books_for` and `prepare` are shared with the test, so both sides use the same prices.
"""

from __future__ import annotations

import sys
from pathlib import Path

from skyd.accounting import Accountant, AccountingSettings, PriceHistory
from skyd.clock import VirtualClock
from skyd.events import EventBus
from skyd.model import Instance, InstanceState
from skyd.scheduler.service import Caller
from skyd.store import Store, open_store
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store

START = 1_780_000_000.0
STEP = 7.3
INSTANCES = 1500
HISTORY = {
    "aws/us-east-1/us-east-1a/m5.large/spot": [(START + 100.5, 310_000), (START + 500.0, 90_000)],
}


def price_of(n: int) -> int:
    return 100_000 + 997 * n


def books_for(store: Store) -> Accountant:
    return Accountant(
        store=store,
        clock=VirtualClock(START),
        bus=EventBus(),
        settings=AccountingSettings(ledger_period_seconds=300),  # many postings per run
        prices=PriceHistory(HISTORY),
    )


def prepare(store: Store) -> None:
    """Pools small enough to run dry mid-run, and instances on two clouds, some spot."""
    admin = Caller(uid=0, is_admin=True)
    books = books_for(store)
    for name, cloud, amount, expires in (
        ("aws-soon", "aws", "20", START + 600),
        ("aws-late", "aws", "40", START + 86_400),
        ("gcp", "gcp", "30", START + 86_400),
    ):
        books.admin.add_pool(
            admin, {"name": name, "cloud": cloud, "amount": amount, "expires": expires}
        )
    job, _ = job_store.insert_job(
        store, name="j", owner_uid=1000, owner_name="u", project="p", priority=0,
        spec_json="{}", base_dir="/", deadline=None, now=START,
    )  # fmt: skip
    with store.transaction() as conn:
        for n in range(INSTANCES):
            instance_store.insert_instance(
                conn,
                Instance(
                    instance_id=f"i-{n}",
                    provider="sim",
                    cloud="gcp" if n % 3 == 0 else "aws",
                    region="us-east-1",
                    zone="us-east-1a",
                    instance_type="m5.large",
                    spot=n % 2 == 0,
                    state=InstanceState.RUNNING,
                ),
                job_id=job.id,
                attempt=1,
                client_token=f"t{n}",
                hourly_price_micros=price_of(n),
                now=START + n % 50,
            )


def main() -> None:
    store = open_store(Path(sys.argv[1]))
    books = books_for(store)
    n = 0
    while True:
        n += 1
        books.accrue(START + n * STEP)


if __name__ == "__main__":
    main()
