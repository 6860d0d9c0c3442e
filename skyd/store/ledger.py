"""The ledger: append-only charges, per-instance accrual watermarks and the daily cost roll-up.

Charges, watermarks, pool spending, the roll-up and jobs' running cost are written by one
function inside the caller's transaction, so after a crash either all of a pass is there
or none of it: no second is charged twice and none is lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from skyd.accounting.accrual import MS_PER_DAY, LedgerRow
from skyd.accounting.records import ChargedInstance

_CURSOR = "instances_rowid"


@dataclass(frozen=True, slots=True)
class OpenAccrual:
    """An instance not yet charged to its end, and how far it has been charged."""

    watermark_id: int
    accrued_ms: int
    carry: int
    instance: ChargedInstance


def discover_instances(conn: sqlite3.Connection) -> int:
    """Start a watermark (at launch) for every instance recorded since the last pass."""
    row = conn.execute("SELECT value FROM accounting_cursor WHERE name = ?", (_CURSOR,)).fetchone()
    seen = int(row[0]) if row else 0
    top = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM instances").fetchone()[0]
    if top <= seen:
        return 0
    cur = conn.execute(
        "INSERT OR IGNORE INTO accrual_watermarks (provider, instance_id, accrued_ms)"
        " SELECT provider, instance_id, CAST(ROUND(launched_at * 1000) AS INTEGER)"
        " FROM instances WHERE rowid > ? AND rowid <= ?",
        (seen, top),
    )
    conn.execute(
        "INSERT INTO accounting_cursor (name, value) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (_CURSOR, top),
    )
    return cur.rowcount


def open_accruals(conn: sqlite3.Connection) -> list[OpenAccrual]:
    rows = conn.execute(
        "SELECT w.id, w.accrued_ms, w.carry, i.provider, i.instance_id, i.job_id, j.owner_uid,"
        " j.project, i.cloud, i.region, i.zone, i.instance_type, i.spot, i.state,"
        " i.hourly_price_micros, i.launched_at, i.ended_at,"
        " json_extract(i.data_json, '$.account')"
        " FROM accrual_watermarks AS w"
        " JOIN instances AS i ON i.provider = w.provider AND i.instance_id = w.instance_id"
        " LEFT JOIN jobs AS j ON j.id = i.job_id"
        " WHERE w.settled = 0"
    ).fetchall()
    return [
        OpenAccrual(
            r[0],
            r[1],
            r[2],
            ChargedInstance(
                r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], bool(r[12]),
                r[13], r[14], r[15], r[16], r[17],
            ),
        )
        for r in rows
    ]  # fmt: skip


def record_charges(
    conn: sqlite3.Connection,
    rows: Sequence[LedgerRow],
    watermarks: Sequence[tuple[int, int, int, int]],
    pool_spent: dict[int, int],
) -> None:
    """Append charges and move watermarks (accrued_ms, carry, settled, id), in one transaction.

    Also adds to the pools' spent totals, the daily roll-up and each job's running cost.
    """
    before = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM ledger").fetchone()[0]
    conn.executemany(
        "INSERT INTO ledger (provider, instance_id, job_id, owner_uid, project, cloud, region,"
        " pool_id, start_ms, end_ms, hourly_price_micros, stopped, amount_micros)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.executemany(
        "UPDATE accrual_watermarks SET accrued_ms = ?, carry = ?, settled = ? WHERE id = ?",
        watermarks,
    )
    conn.executemany(
        "UPDATE credit_pools SET spent_micros = spent_micros + ? WHERE id = ?",
        [(amount, pool_id) for pool_id, amount in pool_spent.items()],
    )
    if not rows:
        return
    conn.execute(
        "INSERT INTO cost_daily (day, job_id, cloud, pool_id, owner_uid, project, amount_micros)"
        " SELECT start_ms / ?, COALESCE(job_id, 0), cloud, COALESCE(pool_id, 0),"
        " MAX(owner_uid), MAX(project), SUM(amount_micros)"
        " FROM ledger WHERE seq > ? GROUP BY 1, 2, 3, 4"
        " ON CONFLICT (day, job_id, cloud, pool_id)"
        " DO UPDATE SET amount_micros = amount_micros + excluded.amount_micros",
        (MS_PER_DAY, before),
    )
    conn.execute(
        "UPDATE jobs SET cost_micros = cost_micros + charged.total"
        " FROM (SELECT job_id, SUM(amount_micros) AS total FROM ledger"
        "       WHERE seq > ? AND job_id IS NOT NULL GROUP BY job_id) AS charged"
        " WHERE jobs.id = charged.job_id",
        (before,),
    )


# -- reading -------------------------------------------------------------------------------

_GROUP_COLUMN = {
    "user": "owner_uid",
    "project": "project",
    "cloud": "cloud",
    "pool": "pool_id",
    "job": "job_id",
}


def costs_by(
    conn: sqlite3.Connection, by: str, since: float | None
) -> list[tuple[Any, int | None, int]]:
    """(key, an owner uid, total) per `by` key: user uid, project, cloud, pool id (0 = cash) or
    job id (0 = no job); the owner is meaningful for users and jobs."""
    column = _GROUP_COLUMN[by]
    sql = f"SELECT {column}, MAX(owner_uid), SUM(amount_micros) FROM cost_daily"
    params: list[Any] = []
    if since is not None:
        sql += " WHERE day >= ?"
        params.append(int(since // 86_400))
    sql += f" GROUP BY {column} ORDER BY 3 DESC, 1"
    return [(r[0], r[1], int(r[2])) for r in conn.execute(sql, params).fetchall()]


def spent_by_project(conn: sqlite3.Connection, since: float) -> dict[str, int]:
    """What each project has been charged since `since` (a UTC midnight), whoever paid."""
    rows = conn.execute(
        "SELECT project, SUM(amount_micros) FROM cost_daily"
        " WHERE project IS NOT NULL AND day >= ? GROUP BY project",
        (int(since // 86_400),),
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def spent_by_pool(conn: sqlite3.Connection, since: float) -> dict[int, tuple[int, float]]:
    """Per pool (0 = cash) since `since`: (amount charged, start of the first day charged)."""
    rows = conn.execute(
        "SELECT pool_id, SUM(amount_micros), MIN(day) FROM cost_daily WHERE day >= ?"
        " GROUP BY pool_id",
        (int(since // 86_400),),
    ).fetchall()
    return {int(r[0]): (int(r[1]), float(r[2]) * 86_400) for r in rows}


def instance_total(conn: sqlite3.Connection, provider: str, instance_id: str) -> int:
    row = conn.execute(
        "SELECT COALESCE(SUM(amount_micros), 0) FROM ledger WHERE provider = ? AND instance_id = ?",
        (provider, instance_id),
    ).fetchone()
    return int(row[0])


def watermark_of(conn: sqlite3.Connection, provider: str, instance_id: str) -> float | None:
    """How far (epoch seconds) an instance has been charged; None before its first pass."""
    row = conn.execute(
        "SELECT accrued_ms FROM accrual_watermarks WHERE provider = ? AND instance_id = ?",
        (provider, instance_id),
    ).fetchone()
    return None if row is None else row[0] / 1000
