"""kill -9 of a real accruing process, again and again: no second charged twice, none lost."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from functools import partial
from pathlib import Path

import tests.accounting.accrual_child as child
from skyd.store import ledger as ledger_store
from skyd.store import open_store
from skyd.testing.daemon import wait_until
from tests.accounting.accounting_books import exact_micros

CHILD = Path(child.__file__)
FINAL = child.START + 2 * 3600


def _charged_up_to(db: Path) -> int:
    with sqlite3.connect(db, timeout=10) as conn:
        row = conn.execute("SELECT COALESCE(MAX(accrued_ms), 0) FROM accrual_progress").fetchone()
    return int(row[0])


def _advanced(db: Path, since: int) -> bool:
    return _charged_up_to(db) > since


def _expected(n: int) -> int:
    launched = child.START + n % 50
    price = child.price_of(n)
    if n % 3 != 0 and n % 2 == 0:  # an aws spot instance: the price history applies
        changes = child.HISTORY["aws/us-east-1/us-east-1a/m5.large/spot"]
        (first, first_price), (second, second_price) = changes
        return exact_micros(
            [(launched, first, price), (first, second, first_price), (second, FINAL, second_price)]
        )
    return exact_micros([(launched, FINAL, price)])


def test_kill_9_during_accrual_loses_and_doubles_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    child.prepare(store)
    store.close()
    db = tmp_path / "skyd.db"
    kills = 0
    for _ in range(3):
        before = _charged_up_to(db)
        proc = subprocess.Popen([sys.executable, str(CHILD), str(tmp_path)])
        try:
            # at least one pass of this run has committed: the next one is in flight
            wait_until(partial(_advanced, db, before), timeout=60, interval=0.01)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        kills += 1
    assert kills == 3
    store = open_store(tmp_path)
    try:
        books = child.books_for(store)
        books.accrue(FINAL)
        conn = store.conn
        for n in range(child.INSTANCES):
            assert ledger_store.instance_total(conn, "sim", f"i-{n}") == _expected(n), n
        total = sum(_expected(n) for n in range(child.INSTANCES))
        by_pool = {
            int(r[0]): int(r[1])
            for r in conn.execute(
                "SELECT COALESCE(pool_id, 0), SUM(amount_micros) FROM ("
                " SELECT pool_id, amount_micros FROM ledger UNION ALL"
                " SELECT w.open_pool_id, p.open_amount FROM accrual_watermarks AS w"
                " JOIN accrual_progress AS p ON p.id = w.id)"
                " GROUP BY 1"
            ).fetchall()
        }
        assert sum(by_pool.values()) == total
        spent = dict(conn.execute("SELECT id, spent_micros FROM credit_pools").fetchall())
        assert spent == {pool: by_pool.get(pool, 0) for pool in spent}
        assert spent == {1: 20_000_000, 2: 40_000_000, 3: 30_000_000}  # every pool ran dry
        report = {r[0]: r[2] for r in ledger_store.costs_by(conn, "pool", None)}
        assert report == by_pool
        posted = conn.execute("SELECT SUM(amount_micros) FROM ledger").fetchone()[0]
        assert conn.execute("SELECT cost_micros FROM jobs").fetchone()[0] == posted
    finally:
        store.close()
