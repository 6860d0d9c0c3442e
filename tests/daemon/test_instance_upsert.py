"""Regression (#12): recording an instance twice (a relaunch reuses its client token, so the
provider answers with the same instance id) while its accounting_dirty row is still queued."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from skyd.model import Instance, InstanceState
from skyd.store import instances as instance_store
from skyd.store import open_store


def _instance(state: InstanceState) -> Instance:
    return Instance(
        instance_id="sim-7-1-0",
        provider="sim",
        cloud="sim",
        region="r1",
        zone="sim-a",
        instance_type="p3.2xlarge",
        spot=True,
        state=state,
    )


def _record(conn: sqlite3.Connection, state: InstanceState, now: float) -> None:
    instance_store.insert_instance(
        conn,
        _instance(state),
        job_id=None,
        attempt=1,
        client_token="skyd-7-1",
        hourly_price_micros=1_000_000,
        now=now,
    )


def test_a_second_upsert_of_an_instance_with_its_dirty_row_queued(tmp_path: Path) -> None:
    store = open_store(tmp_path / "state")
    try:
        with store.transaction() as conn:
            _record(conn, InstanceState.PENDING, 100.0)
        assert store.conn.execute("SELECT count(*) FROM accounting_dirty").fetchone()[0] == 1
        with store.transaction() as conn:  # used to raise IntegrityError (accounting_dirty)
            _record(conn, InstanceState.RUNNING, 101.0)
        rows = store.conn.execute("SELECT state FROM instances").fetchall()
        assert [r[0] for r in rows] == ["RUNNING"]
        # still queued once for the accountant; once its pass took the queue, a state
        # change queues the instance again
        assert store.conn.execute("SELECT count(*) FROM accounting_dirty").fetchone()[0] == 1
        with store.transaction() as conn:
            conn.execute("DELETE FROM accounting_dirty")
        with store.transaction() as conn:
            instance_store.set_instance_state(conn, "sim", "sim-7-1-0", "TERMINATED", now=102.0)
        assert store.conn.execute("SELECT count(*) FROM accounting_dirty").fetchone()[0] == 1
    finally:
        store.close()
