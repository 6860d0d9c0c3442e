"""Data-transfer charges on the ledger: who a pull's instance charges, and posting it once."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import NamedTuple

from skyd.accounting.records import ChargedInstance
from skyd.store import ledger as ledger_store

# (provider, instance_id, job_id, owner_uid, project, cloud, region, pool_id, at_ms, bytes,
#  per_gb_micros, amount_micros, transfer_key)
TransferRow = tuple[
    str, str, int | None, int | None, str | None, str, str, int | None, int, int, int, int, str
]

# An instance and who it charges: its job's owner and project, or its cluster's (as
# skyd.store.ledger.start_new_accruals attributes instance time).
_INSTANCE = (
    "SELECT i.provider, i.instance_id, i.job_id, COALESCE(j.owner_uid, c.owner_uid),"
    " COALESCE(j.project, c.project), i.cloud, i.region, i.zone, i.instance_type, i.spot,"
    " i.state, i.hourly_price_micros, i.launched_at, i.ended_at,"
    " json_extract(i.data_json, '$.account')"
    " FROM instances AS i LEFT JOIN jobs AS j ON j.id = i.job_id"
    " LEFT JOIN clusters AS c"
    "   ON i.job_id IS NULL AND c.id = json_extract(i.data_json, '$.cluster_id')"
)


def charged_instance(
    conn: sqlite3.Connection, provider: str | None, instance_id: str
) -> ChargedInstance | None:
    """The instance data left from, with who pays for it; None if unknown (or, without a
    provider, if more than one provider has an instance of that id)."""
    if provider is None:
        rows = conn.execute(_INSTANCE + " WHERE i.instance_id = ?", (instance_id,)).fetchall()
    else:
        rows = conn.execute(
            _INSTANCE + " WHERE i.provider = ? AND i.instance_id = ?", (provider, instance_id)
        ).fetchall()
    if len(rows) != 1:
        return None
    r = tuple(rows[0])
    return ChargedInstance(
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], bool(r[9]), r[10], r[11], r[12],
        r[13], r[14],
    )  # fmt: skip


def transfer_posted(conn: sqlite3.Connection, key: str) -> bool:
    row = conn.execute("SELECT 1 FROM ledger WHERE transfer_key = ? LIMIT 1", (key,)).fetchone()
    return row is not None


def post_transfers(
    conn: sqlite3.Connection, rows: Sequence[TransferRow], pool_spent: dict[int, int]
) -> None:
    """Append data-transfer charges (one per payer of a pull) with the pools' spending, the
    daily roll-up and the jobs' cost, in the caller's transaction."""
    before = ledger_store.last_seq(conn)
    conn.executemany(
        "INSERT INTO ledger (kind, provider, instance_id, job_id, owner_uid, project, cloud,"
        " region, pool_id, start_ms, end_ms, hourly_price_micros, stopped, bytes,"
        " per_gb_micros, amount_micros, transfer_key)"
        " VALUES ('transfer', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?)",
        [(*r[:9], r[8], *r[9:]) for r in rows],  # a moment: it starts and ends when pulled
    )
    ledger_store.add_pool_spending(conn, pool_spent)
    if rows:
        ledger_store.post_rollup(conn, before)


# what a transfer moved, by its key's first word: checkpoint pulls, job log reads, bucket data
_DATA_OUT = (
    "SELECT substr(transfer_key, 1, instr(transfer_key, ':') - 1) AS what, SUM(bytes),"
    " SUM(amount_micros), COUNT(DISTINCT transfer_key), MAX(start_ms)"
    " FROM ledger WHERE job_id = ? AND kind = 'transfer' AND transfer_key IS NOT NULL"
    " GROUP BY what ORDER BY what"
)


class DataOut(NamedTuple):
    """One kind of data transfer charged to a job (checkpoint, log, bucket)."""

    what: str
    nbytes: int
    micros: int
    transfers: int
    last_ms: int


def job_data_out(conn: sqlite3.Connection, job_id: int) -> list[DataOut]:
    """A job's data transfer charges by what moved: bytes, micro-dollars, how many
    transfers and when the last was charged (`skyctl show`)."""
    return [DataOut(*row) for row in conn.execute(_DATA_OUT, (job_id,))]
